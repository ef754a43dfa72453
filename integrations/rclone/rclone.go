// Package rclone writes rclone remotes that get their tokens from
// tokenhelper: a WebDAV remote (rclone 1.60 backend/webdav, "vendor =
// other" as dCache and XRootD need) whose bearer_token_command runs
// `tokenhelper token`.
//
// rclone 1.60 splits bearer_token_command on single spaces and runs it
// without a shell (no quoting, no variables, no ~), trims its stdout, runs
// it once at the start and again only after an HTTP 401. Command therefore
// refuses any argument with whitespace, quotes or shell syntax in it, and
// SplitCommand does what rclone does so tests can check a line.
package rclone

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/tokenhelper/tokenhelper/helper"
)

// Remote is one rclone.conf section.
type Remote struct {
	// Name of the remote ("dcache" → rclone ls dcache:/path).
	Name string
	// URL of the WebDAV endpoint (https, http; davs and dav are written as
	// https and http).
	URL string
	// Command is the argv of the bearer token command.
	Command []string
}

// SplitCommand splits a bearer_token_command line the way rclone 1.60
// does: on every single space, without a shell.
func SplitCommand(line string) []string { return strings.Split(line, " ") }

// Command joins argv into a bearer_token_command line that rclone splits
// back into exactly argv. It fails (KindConfig) for an empty argument or
// one with whitespace or characters a reader would take for shell syntax.
func Command(argv []string) (string, error) {
	if len(argv) == 0 {
		return "", helper.Errorf(helper.KindUsage, "empty bearer_token_command")
	}
	for _, a := range argv {
		if a == "" {
			return "", helper.Errorf(helper.KindConfig, "bearer_token_command: empty argument")
		}
		if i := strings.IndexFunc(a, func(r rune) bool {
			return r <= ' ' || r == 0x7f || strings.ContainsRune(`"'\$`+"`", r)
		}); i >= 0 {
			return "", helper.Errorf(helper.KindConfig, "bearer_token_command argument %q contains %q: rclone splits the command on spaces and uses no shell", a, a[i:i+1]).
				WithFix("install tokenhelper in a path without spaces (or call it through a symbolic link that has none), and use profile names, scopes and audiences without spaces")
		}
	}
	return strings.Join(argv, " "), nil
}

// WebDAVURL returns the URL rclone's webdav backend takes: https or http
// (davs and dav are converted), with a host, without user information,
// query or fragment.
func WebDAVURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.Opaque != "" {
		// Not repeated: a URL may carry a token in its query.
		return "", helper.Errorf(helper.KindUsage, "the remote URL is not a URL like https://host:port/path")
	}
	switch strings.ToLower(u.Scheme) {
	case "https", "davs":
		u.Scheme = "https"
	case "http", "dav":
		u.Scheme = "http"
	default:
		return "", helper.Errorf(helper.KindUsage, "rclone's webdav backend cannot use %s:// URLs", strings.ToLower(u.Scheme)).
			WithFix("give the storage's WebDAV (https://, davs://) URL; for root:// use xrdcp or gfal with tokenhelper exec")
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return "", helper.Errorf(helper.KindUsage, "the remote URL must not contain a user name, a query or a fragment")
	}
	return u.String(), nil
}

// validName reports whether name is usable as an rclone remote name in
// every rclone version: letters, digits, _ . + @ -, not starting with -.
func validName(name string) bool {
	if name == "" || name[0] == '-' || len(name) > 200 {
		return false
	}
	for _, r := range name {
		if !isNameChar(r) {
			return false
		}
	}
	return true
}

func isNameChar(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("_.+@-", r)
}

// Section returns the rclone.conf section for r:
//
//	[NAME]
//	type = webdav
//	url = https://…
//	vendor = other
//	bearer_token_command = /usr/bin/tokenhelper token -p wlcg -s storage.read:/
func Section(r Remote) (string, error) {
	if !validName(r.Name) {
		return "", helper.Errorf(helper.KindUsage, "%s is not a usable rclone remote name", quoteBounded(r.Name)).
			WithFix("use letters, digits, _ . + @ and -, not starting with -")
	}
	u, err := WebDAVURL(r.URL)
	if err != nil {
		return "", err
	}
	cmd, err := Command(r.Command)
	if err != nil {
		return "", err
	}
	return fmt.Sprintf("[%s]\ntype = webdav\nurl = %s\nvendor = other\nbearer_token_command = %s\n", r.Name, u, cmd), nil
}

func quoteBounded(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return fmt.Sprintf("%q", s)
}
