// Package httpclient builds the HTTP clients tokenhelper talks to identity
// providers with: bounded in time at every stage (dial, TLS, headers, whole
// request), TLS 1.2+, the system roots plus an optional private CA bundle
// (test beds, site CAs), proxies from the environment, and redirects that
// never leave https (except loopback).
package httpclient

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"time"

	"github.com/tokenhelper/tokenhelper/helper"
)

// Options tune New.
type Options struct {
	// CAFile is a PEM bundle trusted in addition to the system roots.
	CAFile string
	// Timeout bounds a whole request (default 30 s). Callers also pass
	// contexts with deadlines; the sooner wins.
	Timeout time.Duration
}

// New returns a client per opts.
func New(opts Options) (*http.Client, error) {
	roots, err := x509.SystemCertPool()
	if err != nil || roots == nil {
		roots = x509.NewCertPool()
	}
	if opts.CAFile != "" {
		pem, err := os.ReadFile(opts.CAFile)
		if err != nil {
			return nil, helper.Wrap(helper.KindConfig, err, "cannot read CA file "+opts.CAFile).WithFix("check ca_file in the profile")
		}
		if !roots.AppendCertsFromPEM(pem) {
			return nil, helper.Errorf(helper.KindConfig, "CA file %s holds no PEM certificate", opts.CAFile).WithFix("check ca_file in the profile")
		}
	}
	if opts.Timeout <= 0 {
		opts.Timeout = 30 * time.Second
	}
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:       &tls.Config{RootCAs: roots, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: opts.Timeout,
		ExpectContinueTimeout: time.Second,
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{
		Transport:     tr,
		Timeout:       opts.Timeout,
		CheckRedirect: checkRedirect,
	}, nil
}

var errInsecureRedirect = errors.New("refusing a redirect away from https")

func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return errors.New("too many redirects")
	}
	if req.URL.Scheme != "https" && !IsLoopback(req.URL) {
		return errInsecureRedirect
	}
	return nil
}

// IsLoopback reports whether u points at this machine (127.0.0.0/8, ::1,
// localhost), where plain http is acceptable for test beds.
func IsLoopback(u *url.URL) bool {
	h := u.Hostname()
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}
