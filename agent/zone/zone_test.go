package zone

import (
	"math"
	"reflect"
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

func validZone() Config {
	return Config{Camera: "porch", Name: "driveway", Points: band, Inertia: 3, Objects: []string{"car", "person"}}
}

func TestWithDefaults(t *testing.T) {
	if got := (Config{}).WithDefaults().Inertia; got != DefaultInertia {
		t.Errorf("default inertia %d, want %d", got, DefaultInertia)
	}
	for _, v := range []int{1, 7, -1, 101} {
		if got := (Config{Inertia: v}).WithDefaults().Inertia; got != v {
			t.Errorf("WithDefaults changed inertia %d to %d", v, got)
		}
	}
}

func TestValidate(t *testing.T) {
	if err := validZone().Validate(); err != nil {
		t.Fatalf("valid zone: %v", err)
	}
	cases := []struct {
		name string
		edit func(*Config)
		want []string
	}{
		{"no camera", func(c *Config) { c.Camera = "" },
			[]string{`camera: "" must be letters, digits, '_' or '-' (it is an MQTT topic level)`}},
		{"name with slash", func(c *Config) { c.Name = "drive/way" },
			[]string{`name: "drive/way" must be letters, digits, '_' or '-' (it is an MQTT topic level)`}},
		{"name with wildcard", func(c *Config) { c.Name = "yard+" },
			[]string{`name: "yard+" must be letters, digits, '_' or '-' (it is an MQTT topic level)`}},
		{"name with space", func(c *Config) { c.Name = "front yard" },
			[]string{`name: "front yard" must be letters, digits, '_' or '-' (it is an MQTT topic level)`}},
		{"two points", func(c *Config) { c.Points = band[:2] },
			[]string{"points: 2 points, a polygon needs at least 3"}},
		{"NaN", func(c *Config) { c.Points = []Point{{0, 0}, {10, 0}, {5, math.NaN()}} },
			[]string{"points: point 2 (5, NaN) is not finite"}},
		{"collinear", func(c *Config) { c.Points = []Point{{0, 0}, {10, 0}, {20, 0}, {5, 0}} },
			[]string{"points: 4 points enclose no area (all on one line)"}},
		{"inertia 0 without defaults", func(c *Config) { c.Inertia = 0 },
			[]string{"inertia: 0 not in 1..100"}},
		{"inertia 101", func(c *Config) { c.Inertia = 101 },
			[]string{"inertia: 101 not in 1..100"}},
		{"empty label", func(c *Config) { c.Objects = []string{"car", ""} },
			[]string{"objects[1]: empty label"}},
		{"everything", func(c *Config) { *c = Config{Inertia: -2} }, []string{
			`camera: "" must be letters, digits, '_' or '-' (it is an MQTT topic level)`,
			`name: "" must be letters, digits, '_' or '-' (it is an MQTT topic level)`,
			"points: 0 points, a polygon needs at least 3",
			"inertia: -2 not in 1..100",
		}},
	}
	for _, c := range cases {
		z := validZone()
		c.edit(&z)
		err := z.Validate()
		if err == nil {
			t.Errorf("%s: no error, want %q", c.name, c.want)
			continue
		}
		if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: errors\n%q\nwant\n%q", c.name, got, c.want)
		}
	}

	ok := []func(*Config){
		func(c *Config) { c.Points = []Point{{-50, -50}, {700, -50}, {700, 100}} }, // clipped by the frame
		func(c *Config) { c.Objects = nil },
		func(c *Config) { c.Name, c.Inertia = "A-b_9", 100 },
		func(c *Config) { c.Objects = []string{"traffic light"} },
	}
	for i, edit := range ok {
		z := validZone()
		edit(&z)
		if err := z.Validate(); err != nil {
			t.Errorf("ok case %d: %v", i, err)
		}
	}
}

func TestValidateAll(t *testing.T) {
	porch2 := validZone()
	porch2.Name = "path"
	porch2.Inertia = 0 // defaulted, so fine
	yard := validZone()
	yard.Camera = "yard"
	if err := ValidateAll([]Config{validZone(), porch2, yard}, []string{"porch", "yard"}); err != nil {
		t.Fatalf("valid zones: %v", err)
	}
	if err := ValidateAll(nil, nil); err != nil {
		t.Fatalf("no zones: %v", err)
	}

	short := validZone()
	short.Name = "lawn"
	short.Points = band[:2]
	dup := validZone()
	garage := validZone()
	garage.Camera = "garage"
	sameNameOtherCamera := yard
	zones := []Config{validZone(), porch2, short, dup, garage, sameNameOtherCamera}
	want := []string{
		"zone[2].points: 2 points, a polygon needs at least 3",
		`zone[3].name: "driveway" is already zone[0] of camera "porch"`,
		`zone[4].camera: "garage" is not a configured camera`,
	}
	err := ValidateAll(zones, []string{"porch", "yard"})
	if err == nil {
		t.Fatalf("no error, want %q", want)
	}
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, want) {
		t.Errorf("errors\n%q\nwant\n%q", got, want)
	}
	// Without a camera list, the camera is not checked against one.
	err = ValidateAll(zones, nil)
	if got := strings.Split(err.Error(), "\n"); !reflect.DeepEqual(got, []string{want[0], want[1]}) {
		t.Errorf("without cameras: errors\n%q\nwant\n%q", got, want[:2])
	}
	if zones[1].Inertia != 0 {
		t.Error("ValidateAll modified its argument")
	}
}

func TestDecodeTOML(t *testing.T) {
	const doc = `
[[zone]]
camera = "porch"
name = "driveway"
points = [[0,400],[640,400],[640.5,480],[-10,480]]
objects = ["car","person"]

[[zone]]
camera = "porch"
name = "path"
points = [[0,0],[10,0],[10,10]]
inertia = 5
`
	var cfg struct {
		Zone []Config `toml:"zone"`
	}
	md, err := toml.Decode(doc, &cfg)
	if err != nil {
		t.Fatal(err)
	}
	if u := md.Undecoded(); len(u) != 0 {
		t.Fatalf("undecoded keys %v", u)
	}
	want := []Config{
		{Camera: "porch", Name: "driveway", Points: []Point{{0, 400}, {640, 400}, {640.5, 480}, {-10, 480}}, Objects: []string{"car", "person"}},
		{Camera: "porch", Name: "path", Points: []Point{{0, 0}, {10, 0}, {10, 10}}, Inertia: 5},
	}
	if !reflect.DeepEqual(cfg.Zone, want) {
		t.Fatalf("decoded\n%+v\nwant\n%+v", cfg.Zone, want)
	}
	if err := ValidateAll(cfg.Zone, []string{"porch"}); err != nil {
		t.Fatal(err)
	}

	// A point with three coordinates is a decode error, not a silent
	// truncation.
	var bad struct {
		Zone []Config `toml:"zone"`
	}
	if _, err := toml.Decode("[[zone]]\npoints = [[0,0,1],[1,0],[1,1]]\n", &bad); err == nil {
		t.Fatalf("3-coordinate point decoded as %v", bad.Zone[0].Points)
	}
}
