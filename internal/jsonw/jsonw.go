// Package jsonw appends JSON values to byte slices without allocating, for
// the per-frame and per-event MQTT payloads that must stay off the GC.
package jsonw

import (
	"strconv"
	"time"
	"unicode/utf8"
)

// TimeLayout is RFC 3339 in UTC with milliseconds, the timestamp format of
// every edgedet payload.
const TimeLayout = "2006-01-02T15:04:05.000Z07:00"

// Time appends t as a JSON string in UTC, or null when t is zero.
func Time(buf []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(buf, "null"...)
	}
	buf = append(buf, '"')
	buf = t.UTC().AppendFormat(buf, TimeLayout)
	return append(buf, '"')
}

// Floats appends vs, comma-separated, with prec decimals each.
func Floats(buf []byte, prec int, vs ...float32) []byte {
	for i, v := range vs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = Float(buf, v, prec)
	}
	return buf
}

// Float appends v with prec decimals; NaN and ±Inf, which JSON cannot
// hold, become 0.
func Float(buf []byte, v float32, prec int) []byte {
	if v != v || v > 3.4e38 || v < -3.4e38 {
		v = 0
	}
	return strconv.AppendFloat(buf, float64(v), 'f', prec, 32)
}

// String appends s as a JSON string, escaping quotes, backslashes,
// control characters and invalid UTF-8.
func String(buf []byte, s string) []byte {
	const hex = "0123456789abcdef"
	buf = append(buf, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			buf = append(buf, c)
			i++
			continue
		}
		if c < utf8.RuneSelf {
			switch c {
			case '"', '\\':
				buf = append(buf, '\\', c)
			case '\n':
				buf = append(buf, '\\', 'n')
			case '\r':
				buf = append(buf, '\\', 'r')
			case '\t':
				buf = append(buf, '\\', 't')
			default:
				buf = append(buf, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			buf = append(buf, `\ufffd`...)
		} else {
			buf = append(buf, s[i:i+size]...)
		}
		i += size
	}
	return append(buf, '"')
}
