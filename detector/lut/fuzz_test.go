package lut

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/edgedet/edgedet/onnx"
)

// FuzzRewrite: any model bytes give an error, or a rewrite whose result
// encodes and decodes again; a second rewrite of it finds nothing new.
func FuzzRewrite(f *testing.F) {
	seeds := [][]byte{}
	for _, quantSig := range []bool{false, true} {
		b, err := proto.Marshal(siluQDQ(shp, u8in, u8out, quantSig))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	for _, swap := range []bool{false, true} {
		b, err := proto.Marshal(qlinearSiLU(swap))
		if err != nil {
			f.Fatal(err)
		}
		seeds = append(seeds, b)
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := onnx.DecodeModel(b)
		if err != nil {
			return
		}
		n, err := Rewrite(m)
		if err != nil {
			return
		}
		out, err := proto.Marshal(m)
		if err != nil {
			t.Fatalf("rewrote %d, result does not encode: %v", n, err)
		}
		m2, err := onnx.DecodeModel(out)
		if err != nil {
			t.Fatalf("rewrote %d, result does not decode: %v", n, err)
		}
		if n2, err := Rewrite(m2); err != nil || n2 != 0 {
			t.Fatalf("second rewrite: %d, %v", n2, err)
		}
	})
}
