// Package redact hides secrets in text edgedet prints: logs, `run --check`,
// error messages and the HTTP status JSON. Use it wherever a URL (a broker,
// a camera source, a GStreamer pipeline naming one) or an error that may
// quote one is printed.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces each secret.
const Mask = "xxxxx"

// urlRE finds URLs inside text: a scheme, "://", then up to white space or
// a quote.
var urlRE = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.\-]*://[^\s"'<>]*`)

// propRE finds password properties of GStreamer elements (rtspsrc user-pw=,
// souphttpsrc proxy-pw=) and password=… written outside a URL.
var propRE = regexp.MustCompile(`(?i)(^|[\s!])((?:user|proxy)-pw|password|passwd)=("[^"]*"|'[^']*'|[^\s!]+)`)

// String returns text with every secret in it masked: the password of each
// URL's user info ("rtsp://admin:xxxxx@cam/s"), the values of
// password-like query parameters ("?user=admin&password=xxxxx"), and
// GStreamer password properties ("user-pw=xxxxx"). The user name and
// everything else is kept as written.
func String(text string) string {
	if !strings.Contains(text, "://") && !strings.Contains(text, "=") {
		return text
	}
	out := urlRE.ReplaceAllStringFunc(text, redactURL)
	return propRE.ReplaceAllString(out, "${1}${2}="+Mask)
}

// URL is String for a value that is one URL, which may lack its scheme
// ("user:pass@host:1883" is masked too).
func URL(raw string) string {
	if strings.Contains(raw, "://") {
		return String(raw)
	}
	at := strings.LastIndexByte(raw, '@')
	if at < 0 {
		return String(raw)
	}
	if c := strings.IndexByte(raw[:at], ':'); c >= 0 && !strings.ContainsAny(raw[:at], "/ \t") {
		return raw[:c+1] + Mask + String(raw[at:])
	}
	return String(raw)
}

// redactURL masks one URL found by urlRE.
func redactURL(u string) string {
	i := strings.Index(u, "://") + 3
	rest := u[i:]
	end := strings.IndexAny(rest, "/?#")
	if end < 0 {
		end = len(rest)
	}
	var b strings.Builder
	b.WriteString(u[:i])
	if at := strings.LastIndexByte(rest[:end], '@'); at >= 0 {
		userinfo := rest[:at]
		if c := strings.IndexByte(userinfo, ':'); c >= 0 {
			userinfo = userinfo[:c+1] + Mask
		}
		b.WriteString(userinfo)
		b.WriteString(rest[at:end])
	} else {
		b.WriteString(rest[:end])
	}
	rest = rest[end:]
	q := strings.IndexByte(rest, '?')
	if q < 0 {
		b.WriteString(rest)
		return b.String()
	}
	b.WriteString(rest[:q+1])
	query, frag := rest[q+1:], ""
	if h := strings.IndexByte(query, '#'); h >= 0 {
		query, frag = query[:h], query[h:]
	}
	start := 0
	for j := 0; j <= len(query); j++ {
		if j == len(query) || query[j] == '&' || query[j] == ';' {
			b.WriteString(redactParam(query[start:j]))
			if j < len(query) {
				b.WriteByte(query[j])
			}
			start = j + 1
		}
	}
	b.WriteString(frag)
	return b.String()
}

// redactParam masks the value of one name=value query parameter whose
// name says it is a secret.
func redactParam(p string) string {
	name, _, ok := strings.Cut(p, "=")
	if !ok {
		return p
	}
	if n, err := url.QueryUnescape(name); err == nil {
		name = n
	}
	if SecretName(name) {
		return p[:strings.IndexByte(p, '=')+1] + Mask
	}
	return p
}

// secretWords are parts of names that mark a secret value; exactNames are
// short names that do only when they are the whole name.
var (
	secretWords = []string{"password", "passwd", "passphrase", "secret", "token", "apikey", "api_key", "api-key", "signature", "credential"}
	exactNames  = map[string]bool{"pass": true, "pwd": true, "pw": true, "key": true, "sig": true, "auth": true, "psk": true}
)

// SecretName reports whether a parameter or config key name (password,
// access_token, api_key, pwd, …) holds a secret. Names of where a secret
// is kept (password_file, password_env, key_path) do not.
func SecretName(name string) bool {
	n := strings.ToLower(name)
	for _, ref := range []string{"_file", "_env", "_path", "_dir"} {
		if strings.HasSuffix(n, ref) {
			return false
		}
	}
	if exactNames[n] {
		return true
	}
	for _, w := range secretWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
