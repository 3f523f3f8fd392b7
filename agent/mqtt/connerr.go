package mqtt

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"

	"github.com/eclipse/paho.mqtt.golang/packets"
)

// connFailure is why a connection attempt failed.
type connFailure int

const (
	failNone connFailure = iota
	failOther
	failRefused     // TCP connection refused: nothing listening
	failUnreachable // no route to the host or network
	failDNS         // host name not resolved
	failTimeout     // no answer within connect_timeout
	failClosed      // the broker closed the connection during the handshake
	failBadLogin    // CONNACK: bad user name or password
	failNotAuthorized
	failIDRejected
	failServerUnavailable
	failProtocol
	failCertAuthority // the broker's certificate is not signed by a trusted CA
	failCertName      // the broker's certificate is not for the broker's host name
	failCertInvalid   // the broker's certificate is expired, not yet valid or unusable
	failTLSRejected   // the broker rejected the TLS handshake (our client certificate)
	failTLS           // another TLS handshake failure
)

var connFailures = [...]struct{ reason, message string }{
	failNone:              {"", ""},
	failOther:             {"other", "broker connect failed"},
	failRefused:           {"connection_refused", "broker unreachable (connection refused)"},
	failUnreachable:       {"unreachable", "broker unreachable (no route to host)"},
	failDNS:               {"dns", "broker unreachable (host name not found)"},
	failTimeout:           {"timeout", "broker unreachable (no answer within mqtt.connect_timeout)"},
	failClosed:            {"closed", "broker closed the connection during connect"},
	failBadLogin:          {"bad_username_or_password", "broker refused the connection: bad username or password (mqtt.username, mqtt.password*)"},
	failNotAuthorized:     {"not_authorized", "broker refused the connection: not authorized (check mqtt.username and the password)"},
	failIDRejected:        {"client_id_rejected", "broker refused the connection: client id rejected"},
	failServerUnavailable: {"server_unavailable", "broker refused the connection: server unavailable"},
	failProtocol:          {"protocol", "broker refused the connection: protocol version or violation"},
	failCertAuthority:     {"certificate_unknown_authority", "broker certificate not trusted: unknown authority (mqtt.tls.ca_file)"},
	failCertName:          {"certificate_name_mismatch", "broker certificate does not match the broker host name (mqtt.broker, mqtt.tls.server_name)"},
	failCertInvalid:       {"certificate_invalid", "broker certificate invalid (expired, not yet valid or not for a server)"},
	failTLSRejected:       {"tls_rejected_by_broker", "broker rejected the TLS handshake (client certificate missing or not trusted: mqtt.tls.cert_file)"},
	failTLS:               {"tls", "tls handshake with the broker failed"},
}

func (k connFailure) String() string  { return connFailures[k].reason }
func (k connFailure) message() string { return connFailures[k].message }

// needsOperator reports a failure retrying will not cure.
func (k connFailure) needsOperator() bool { return k >= failBadLogin }

// classifyConnect says why a connection attempt failed, from the error paho
// reports: a CONNACK refusal, a TLS or certificate error, or a network one.
func classifyConnect(err error) connFailure {
	if err == nil {
		return failNone
	}
	switch {
	case errors.Is(err, packets.ErrorRefusedBadUsernameOrPassword):
		return failBadLogin
	case errors.Is(err, packets.ErrorRefusedNotAuthorised):
		return failNotAuthorized
	case errors.Is(err, packets.ErrorRefusedIDRejected):
		return failIDRejected
	case errors.Is(err, packets.ErrorRefusedServerUnavailable):
		return failServerUnavailable
	case errors.Is(err, packets.ErrorRefusedBadProtocolVersion), errors.Is(err, packets.ErrorProtocolViolation):
		return failProtocol
	}
	var (
		unknownCA x509.UnknownAuthorityError
		hostname  x509.HostnameError
		invalid   x509.CertificateInvalidError
		verify    *tls.CertificateVerificationError
		recErr    tls.RecordHeaderError
		dnsErr    *net.DNSError
		netErr    net.Error
	)
	switch {
	case errors.As(err, &unknownCA):
		return failCertAuthority
	case errors.As(err, &hostname):
		return failCertName
	case errors.As(err, &invalid):
		return failCertInvalid
	case errors.As(err, &verify):
		return failCertInvalid
	case errors.As(err, &recErr):
		return failTLS // not a TLS server
	case errors.As(err, &dnsErr):
		return failDNS
	case errors.Is(err, syscall.ECONNREFUSED):
		return failRefused
	case errors.Is(err, syscall.ENETUNREACH), errors.Is(err, syscall.EHOSTUNREACH):
		return failUnreachable
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &netErr) && netErr.Timeout():
		return failTimeout
	}
	// A TLS alert from the broker (crypto/tls reports it as a "remote
	// error" whose type is not exported): it refused our certificate.
	if msg := err.Error(); strings.Contains(msg, "remote error: tls:") {
		return failTLSRejected
	} else if strings.Contains(msg, "tls:") {
		return failTLS
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) {
		return failClosed
	}
	return failOther
}

// scrub returns err's text with the password (if any) masked: dial errors
// may quote the broker URL.
func (c *Client) scrub(err error) string {
	if err == nil {
		return ""
	}
	s := err.Error()
	if c.secret != "" {
		s = strings.ReplaceAll(s, c.secret, "xxxxx")
		s = strings.ReplaceAll(s, url.QueryEscape(c.secret), "xxxxx")
		s = strings.ReplaceAll(s, url.PathEscape(c.secret), "xxxxx")
	}
	return s
}
