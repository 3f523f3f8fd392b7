package agent

import (
	"reflect"
	"strings"

	"github.com/edgedet/edgedet/internal/redact"
)

// Redacted returns a deep copy of c fit to print (`run --check`, logs):
// every key whose name says it holds a secret (password, token, …; not
// password_file or password_env, which say where one is) is masked, and
// every other string goes through redact.String, so passwords inside
// broker URLs, camera URLs and GStreamer pipelines are masked too. c is not
// modified. It walks the struct, so keys added later are covered.
func (c *Config) Redacted() Config {
	out := reflect.New(reflect.TypeFor[Config]()).Elem()
	copyRedacted(out, reflect.ValueOf(*c), "")
	return out.Interface().(Config)
}

// copyRedacted deep-copies src into dst (settable, same type), masking
// strings; name is the TOML key src was found under.
func copyRedacted(dst, src reflect.Value, name string) {
	switch src.Kind() {
	case reflect.String:
		s := src.String()
		if s != "" && redact.SecretName(name) {
			s = redact.Mask
		} else {
			s = redact.String(s)
		}
		dst.SetString(s)
	case reflect.Struct:
		dst.Set(src) // unexported fields as they are
		t := src.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if key == "" {
				key = f.Name
			}
			copyRedacted(dst.Field(i), src.Field(i), key)
		}
	case reflect.Slice:
		if src.IsNil() {
			return
		}
		dst.Set(reflect.MakeSlice(src.Type(), src.Len(), src.Len()))
		for i := range src.Len() {
			copyRedacted(dst.Index(i), src.Index(i), name)
		}
	case reflect.Array:
		for i := range src.Len() {
			copyRedacted(dst.Index(i), src.Index(i), name)
		}
	case reflect.Map:
		if src.IsNil() {
			return
		}
		m := reflect.MakeMapWithSize(src.Type(), src.Len())
		for it := src.MapRange(); it.Next(); {
			v := reflect.New(src.Type().Elem()).Elem()
			copyRedacted(v, it.Value(), name)
			m.SetMapIndex(it.Key(), v)
		}
		dst.Set(m)
	case reflect.Pointer:
		if src.IsNil() {
			return
		}
		p := reflect.New(src.Type().Elem())
		copyRedacted(p.Elem(), src.Elem(), name)
		dst.Set(p)
	default:
		dst.Set(src)
	}
}
