// Package curl is tokenhelper's curl front-end (`tokenhelper curl`,
// `tokenhelper header`). It reads a curl command line the way curl 7.88
// does (curl(1): clustered short options, attached short-option values,
// unambiguous prefixes of long options, "--") to find the URLs the token
// is for and what would clash with handing the token over, and writes the
// curl config (curl(1) "-K, --config") that carries the RFC 6750
// "Authorization: Bearer" header to curl through a pipe, so that the token
// never appears in curl's argv or environment (google/oauth2l put it in
// argv: anyone on the machine could read it from /proc).
//
// The functions are pure: no processes, no files. Running curl is the
// caller's business (see the tokenhelper CLI and integrations/execenv).
package curl

import (
	"strings"

	"github.com/tokenhelper/tokenhelper/helper"
)

// Args is what tokenhelper needs to know about a curl command line.
type Args struct {
	// URLs are the URLs curl will fetch, in order: positional arguments,
	// everything after "--", and --url values.
	URLs []string
	// ReadsStdin is true when an option makes curl read its standard input
	// (-T -, -T ., -d @-, -F name=@-, -H @-, -K -, -b -, ...): then the
	// config cannot come on stdin and goes through another descriptor.
	ReadsStdin bool
	// UserConfig is true when the command line has its own -K/--config:
	// the URLs in such a file are invisible here.
	UserConfig bool
	// Verbose is true with -v, --trace or --trace-ascii: curl then prints
	// the request headers, the token included, on stderr (or the trace
	// file).
	Verbose bool
	// Lead is the number of leading arguments that must stay first: curl
	// skips ~/.curlrc only when its first argument is -q/--disable (or a
	// cluster with q), so the config option is inserted after them.
	Lead int
}

// outputs are options whose "-" argument means stdout, not stdin.
var outputs = map[string]bool{
	"output": true, "dump-header": true, "cookie-jar": true, "stderr": true, "trace": true,
	"trace-ascii": true, "libcurl": true, "etag-save": true, "alt-svc": true, "hsts": true,
}

// Parse reads curl's arguments (without argv[0]). It fails (KindUsage) on
// what tokenhelper refuses: several operations (-:, --next), an
// Authorization header, -u/--user or --oauth2-bearer of the caller's own
// (a second credential, and possibly a token in argv), --location-trusted
// (the token would follow redirects to other hosts), and a long option
// prefix that matches several options.
func Parse(args []string) (*Args, error) {
	a := &Args{}
	opts := true
	for i := 0; i < len(args); i++ {
		arg := args[i]
		start := i
		switch {
		case !opts || arg == "-" || !strings.HasPrefix(arg, "-"):
			a.URLs = append(a.URLs, arg)
			continue
		case arg == "--":
			opts = false
			continue
		case strings.HasPrefix(arg, "--"):
			name, takesArg, negated, err := lookupLong(arg[2:])
			if err != nil {
				return nil, err
			}
			val := ""
			if takesArg {
				if i+1 >= len(args) {
					return nil, helper.Errorf(helper.KindUsage, "curl option --%s needs an argument", name)
				}
				i++
				val = args[i]
			}
			if err := a.option(name, val, negated); err != nil {
				return nil, err
			}
			if start == 0 && name == "disable" {
				a.Lead = i + 1
			}
		default: // a cluster of short options
			lead := false
			for j := 1; j < len(arg); j++ {
				c := arg[j]
				name, known := shortOptions[c]
				if !known {
					// curl rejects it; nothing to learn from the rest.
					break
				}
				if name == "disable" {
					lead = start == 0
				}
				if !longOptions[name] {
					if err := a.option(name, "", false); err != nil {
						return nil, err
					}
					continue
				}
				val := arg[j+1:]
				if val == "" {
					if i+1 >= len(args) {
						return nil, helper.Errorf(helper.KindUsage, "curl option -%c needs an argument", c)
					}
					i++
					val = args[i]
				}
				if err := a.option(name, val, false); err != nil {
					return nil, err
				}
				break
			}
			if lead {
				a.Lead = i + 1
			}
		}
	}
	return a, nil
}

// lookupLong resolves a long option name (without "--"), also a "no-"
// negation of a boolean (negated true) and an unambiguous prefix, as curl
// does. Unknown names are returned as they are, without an argument.
func lookupLong(word string) (name string, takesArg, negated bool, err error) {
	if ta, ok := longOptions[word]; ok {
		return word, ta, false, nil
	}
	if rest, ok := strings.CutPrefix(word, "no-"); ok {
		if name, ta, _, err := lookupLong(rest); err == nil && !ta {
			if _, known := longOptions[name]; known {
				return name, false, true, nil
			}
		}
	}
	match := ""
	for name := range longOptions {
		if strings.HasPrefix(name, word) {
			if match != "" {
				return "", false, false, helper.Errorf(helper.KindUsage, "curl option --%s is ambiguous (--%s, --%s, ...)", word, min(match, name), max(match, name)).
					WithFix("write the option out in full")
			}
			match = name
		}
	}
	if match == "" {
		return word, false, false, nil
	}
	return match, longOptions[match], false, nil
}

// option records one option with its value (negated: --no-NAME).
func (a *Args) option(name, val string, negated bool) error {
	switch name {
	case "next":
		return helper.Errorf(helper.KindUsage, "tokenhelper curl runs one curl operation; -:/--next starts another").
			WithFix("run tokenhelper curl once per operation")
	case "oauth2-bearer", "user":
		return helper.Errorf(helper.KindUsage, "tokenhelper curl adds the bearer token itself; remove --%s", name).
			WithFix("drop --%s (and never put a token on a command line: others can read it)", name)
	case "location-trusted":
		if negated {
			return nil
		}
		return helper.Errorf(helper.KindUsage, "--location-trusted would send the token to any host a redirect names").
			WithFix("use -L (curl then keeps the Authorization header for the original host)")
	case "header":
		if isAuthorization(val) {
			return helper.Errorf(helper.KindUsage, "tokenhelper curl adds the Authorization header itself; remove your -H Authorization").
				WithFix("drop the -H option (and never put a token on a command line: others can read it)")
		}
	case "config":
		a.UserConfig = true
	case "url":
		a.URLs = append(a.URLs, val)
	case "verbose", "trace", "trace-ascii":
		if !negated {
			a.Verbose = true
		}
	case "upload-file":
		if val == "." {
			a.ReadsStdin = true
		}
	}
	if readsStdin(name, val) {
		a.ReadsStdin = true
	}
	return nil
}

// readsStdin reports whether the option argument names standard input.
// It errs on the side of yes: the price is a config on another
// descriptor, not a wrong upload.
func readsStdin(name, val string) bool {
	if val == "" || outputs[name] {
		return false
	}
	return val == "-" || strings.Contains(val, "@-") || strings.Contains(val, "<-")
}

// isAuthorization reports whether a -H value sets or removes the
// Authorization header ("Authorization: x", "authorization;",
// "Authorization:").
func isAuthorization(h string) bool {
	h = strings.TrimLeft(h, " \t")
	const name = "authorization"
	if len(h) < len(name) || !strings.EqualFold(h[:len(name)], name) {
		return false
	}
	rest := strings.TrimLeft(h[len(name):], " \t")
	return rest == "" || rest[0] == ':' || rest[0] == ';'
}

// HeaderLine is the HTTP header line for a bearer token (RFC 6750 §2.1),
// without line end.
func HeaderLine(token string) string { return "Authorization: Bearer " + token }

// Config is the curl config text that adds the Authorization header. The
// token must be an RFC 6750 b64token (it then needs no quoting in curl's
// config syntax).
func Config(token string) (string, error) {
	if !helper.IsB64Token(token) {
		return "", helper.Errorf(helper.KindInvalidToken, "refusing to hand curl something that is not a bearer token")
	}
	return `header = "` + HeaderLine(token) + `"` + "\n", nil
}

// Command returns curl's argv after argv[0]: the caller's arguments with
// "-K configArg" inserted after the leading -q (see Args.Lead), so the
// header applies to the whole operation. configArg is "-" (stdin) or a
// path such as /dev/fd/3.
func Command(args []string, a *Args, configArg string) []string {
	out := make([]string, 0, len(args)+2)
	out = append(out, args[:a.Lead]...)
	out = append(out, "-K", configArg)
	return append(out, args[a.Lead:]...)
}
