package platforms

// Plan is what edgedet should use on a board: execution providers to try in
// order, the matching quantize profile, CPU threads and camera defaults.
//
// Providers is a wish list. The detector tries only those the loaded ONNX
// Runtime library has (see AvailableProviders and Plan.Usable), logs each
// step that fails with the library's reason, and ends on "cpu". The prebuilt
// libraries have no XNNPACK, ACL or OpenVINO, so on those boards the plan
// comes down to CPU unless a custom build provides them.
type Plan struct {
	// Providers are short names ("tensorrt", "cuda", "xnnpack", "acl",
	// "openvino", "cpu") in the order to try; see ORTProviderName.
	Providers []string `json:"providers"`
	// Profile is the `edgedet quantize --profile` for this board:
	// "tensorrt" (Jetson), "arm" (Raspberry Pi, arm64), "cpu" (x86).
	Profile string `json:"profile"`
	// Threads is the intra-op thread count: the physical cores; 0 lets ONNX
	// Runtime choose (core count unknown).
	Threads int `json:"threads"`
	// CameraHint says how to open this board's cameras.
	CameraHint string `json:"camera_hint"`
}

// Camera hints per board kind.
const (
	usbCameraHint     = "USB: /dev/video0 (V4L2)"
	piCameraHint      = "CSI camera: GStreamer `libcamerasrc ! video/x-raw,width=1280,height=720,format=NV12 ! videoconvert ! appsink`; " + usbCameraHint
	jetsonCameraHint  = "CSI camera: GStreamer `nvarguscamerasrc ! video/x-raw(memory:NVMM),width=1280,height=720,framerate=30/1 ! nvvidconv ! video/x-raw,format=BGRx ! videoconvert ! appsink`; " + usbCameraHint
	genericCameraHint = usbCameraHint + "; RTSP/HTTP streams or video files by URL/path"
)

// ortProviderNames maps plan names to ONNX Runtime's execution-provider
// names as GetAvailableProviders reports them.
var ortProviderNames = map[string]string{
	"tensorrt": "TensorrtExecutionProvider",
	"cuda":     "CUDAExecutionProvider",
	"openvino": "OpenVINOExecutionProvider",
	"xnnpack":  "XnnpackExecutionProvider",
	"acl":      "ACLExecutionProvider",
	"armnn":    "ArmNNExecutionProvider",
	"webgpu":   "WebGpuExecutionProvider",
	"cpu":      "CPUExecutionProvider",
}

// ORTProviderName returns ONNX Runtime's name for a plan provider
// ("cuda" → "CUDAExecutionProvider"), or "" for an unknown name.
func ORTProviderName(short string) string { return ortProviderNames[short] }

// PlanFor returns the plan for a board: Jetson → tensorrt, cuda, cpu;
// Raspberry Pi and other arm64 → xnnpack, acl, cpu; x86-64 → openvino, cpu;
// anything else → cpu. It never names WebGPU (appending it breaks ONNX
// Runtime's environment teardown) nor ArmNN (not in the prebuilt libraries).
func PlanFor(b Board) Plan {
	p := Plan{Threads: b.PhysicalCores}
	if p.Threads < 0 {
		p.Threads = 0
	}
	switch b.Kind {
	case KindJetson:
		p.Providers = []string{"tensorrt", "cuda", "cpu"}
		p.Profile = "tensorrt"
		p.CameraHint = jetsonCameraHint
	case KindRaspberryPi:
		p.Providers = []string{"xnnpack", "acl", "cpu"}
		p.Profile = "arm"
		p.CameraHint = piCameraHint
	case KindARM64:
		p.Providers = []string{"xnnpack", "acl", "cpu"}
		p.Profile = "arm"
		p.CameraHint = genericCameraHint
	case KindX86_64:
		p.Providers = []string{"openvino", "cpu"}
		p.Profile = "cpu"
		p.CameraHint = genericCameraHint
	default:
		p.Providers = []string{"cpu"}
		p.Profile = "cpu"
		if b.Arch == "arm" {
			p.Profile = "arm"
		}
		p.CameraHint = genericCameraHint
	}
	return p
}

// Usable returns the plan's providers that the library has, given the
// ONNX Runtime names from AvailableProviders, in plan order. "cpu" is always
// kept: every ONNX Runtime build has it.
func (p Plan) Usable(available []string) []string {
	have := make(map[string]bool, len(available))
	for _, a := range available {
		have[a] = true
	}
	var out []string
	for _, s := range p.Providers {
		if s == "cpu" || have[ORTProviderName(s)] {
			out = append(out, s)
		}
	}
	return out
}
