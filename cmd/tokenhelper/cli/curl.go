package cli

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/integrations/curl"
	"github.com/tokenhelper/tokenhelper/integrations/execenv"
)

func (a *app) curlCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "curl [-p NAME] [--scope S]... [--aud A]... [--min-valid D] [--force] [--] CURL-ARGS...",
		GroupID: "tools",
		Short:   "Run curl with the token of the URL's profile (never in curl's argv or environment)",
		Long: `Run curl with an "Authorization: Bearer" header for the URL(s) among the arguments.
The header reaches curl as a config on a pipe ("-K -", curl's stdin), so the token is
never in curl's argv or environment, where other users of the machine could read it.

The profile is the one a [[routes]] entry names for the URL (with the route's scopes and
audiences), or the one given with -p. Without -p, tokenhelper refuses URLs no route
serves: a token only goes to the hosts your configuration names. All URLs of one call
must route to the same profile, scopes and audiences.

tokenhelper's own options come first, before curl's, and are only these: -p/--profile
NAME, --scope S, --aud A, --min-valid D and --force; "--" ends them. Everything else
goes to curl unchanged: -s, -v, -o and -p mean what they mean to curl (write curl's
-p as --proxytunnel). To name tokenhelper's configuration file set TOKENHELPER_CONFIG
(--config belongs to curl here).

When curl itself reads stdin (-T -, -d @-, --data-binary @-, -F name=@-, -H @-, your own
-K), the header config goes through file descriptor 3 instead (-K /dev/fd/3, a pipe),
and curl's stdin is tokenhelper's. Refused: -:/--next (one operation per call),
--oauth2-bearer, -u/--user and -H Authorization (tokenhelper sets the header), and
--location-trusted (the token would follow redirects to other hosts; with -L curl drops
the header when a redirect leaves the host). With a -K file of your own, -p is needed:
tokenhelper cannot see the URLs inside it.

curl's exit status is passed through; tokenhelper's own failures use its exit codes
(10: no route for the URL) and 127 when curl is not installed.`,
		Example: `  tokenhelper curl -T results.root https://se.example.org:2880/data/alice/results.root
  tokenhelper curl -sSf -o file.txt https://se.example.org:2880/data/file.txt
  tokenhelper curl -p wlcg --scope storage.read:/ -L https://se.example.org/data/x
  tar c dir | tokenhelper curl -T - https://se.example.org:2880/data/dir.tar`,
		DisableFlagParsing:    true,
		DisableFlagsInUseLine: true,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			o, rest, help, err := a.curlOwnOptions(args)
			if err != nil {
				return err
			}
			if help {
				return cmd.Help()
			}
			return a.runCurl(cmd.Context(), o, rest)
		}),
	}
	// Its options are parsed by hand (above); the global flags would
	// mislead here (-v and --config are curl's).
	cmd.SetUsageTemplate("Usage:\n  {{.UseLine}}\n\nExamples:\n{{.Example}}\n")
	return cmd
}

// curlOwnOptions takes tokenhelper's options off the front of curl's
// arguments.
func (a *app) curlOwnOptions(args []string) (o tokenOptions, rest []string, help bool, err error) {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help") {
		return o, nil, true, nil
	}
	value := func(i *int, name, inline string, hasInline bool) (string, error) {
		if hasInline {
			return inline, nil
		}
		if *i+1 >= len(args) {
			return "", &helper.Error{Kind: helper.KindUsage, Msg: "option " + name + " needs a value", Fix: "see tokenhelper curl --help"}
		}
		*i++
		return args[*i], nil
	}
	i := 0
	for ; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			i++
			break
		}
		// Only "-p NAME": "-pv" and the like are curl's (-p is
		// --proxytunnel there).
		name, inline, hasInline := strings.Cut(arg, "=")
		if !strings.HasPrefix(arg, "--") {
			name, inline, hasInline = arg, "", false
		}
		var v string
		switch name {
		case "-p", "--profile":
			if v, err = value(&i, name, inline, hasInline); err != nil {
				return o, nil, false, err
			}
			a.profileFlag = v
		case "--scope":
			if v, err = value(&i, name, inline, hasInline); err != nil {
				return o, nil, false, err
			}
			o.scopes = append(o.scopes, v)
		case "--aud":
			if v, err = value(&i, name, inline, hasInline); err != nil {
				return o, nil, false, err
			}
			o.audiences = append(o.audiences, v)
		case "--min-valid":
			if v, err = value(&i, name, inline, hasInline); err != nil {
				return o, nil, false, err
			}
			d, perr := time.ParseDuration(v)
			if perr != nil || d < 0 {
				return o, nil, false, &helper.Error{Kind: helper.KindUsage, Msg: fmt.Sprintf("--min-valid %q is not a duration like 10m", v), Fix: "see tokenhelper curl --help"}
			}
			o.minValid, o.minSet = d, true
		case "--force":
			if hasInline {
				return o, nil, false, &helper.Error{Kind: helper.KindUsage, Msg: "--force takes no value", Fix: "see tokenhelper curl --help"}
			}
			o.force = true
		default:
			return o, args[i:], false, nil
		}
	}
	return o, args[i:], false, nil
}

// routeURLs picks the profile and token parameters for urls: the -p
// profile if given (with a route's scopes and audiences when the route
// names that profile), else the route serving them, which must be the
// same for all. Without -p, a URL no route serves is a KindNoProfile
// error: a token only goes where the configuration says.
func (a *app) routeURLs(urls []string, o tokenOptions) (*config.Profile, tokenOptions, error) {
	cfg, _, err := a.config()
	if err != nil {
		return nil, o, err
	}
	explicit := a.profileFlag != ""
	var chosen *config.Match
	chosenURL := ""
	for _, u := range urls {
		m, err := cfg.MatchURL(u)
		if err != nil {
			if explicit {
				continue
			}
			if helper.IsKind(err, helper.KindUsage) {
				return nil, o, helper.Errorf(helper.KindUsage, "cannot tell which profile serves %s: tokenhelper needs absolute URLs (https://host/path)", describeURL(u)).
					WithFix("write the URL with its scheme, or name the profile with -p NAME")
			}
			return nil, o, err
		}
		if m == nil || (explicit && m.Profile.Name != a.profileFlag) {
			if explicit {
				continue
			}
			where := "the configuration"
			if cfg.Path != "" {
				where = cfg.Path
			}
			return nil, o, helper.Errorf(helper.KindNoProfile, "no route serves %s, so tokenhelper does not send it a token", describeURL(u)).
				WithFix("add to %s: [[routes]] url = %q profile = \"NAME\"; or name the profile with -p NAME", where, originOf(u))
		}
		if chosen == nil {
			chosen, chosenURL = m, u
			continue
		}
		if m.Profile.Name != chosen.Profile.Name || !sameSet(m.Scopes, chosen.Scopes) || !sameSet(m.Audiences, chosen.Audiences) {
			return nil, o, helper.Errorf(helper.KindUsage, "%s and %s are served by different routes (profile %q and %q, or other scopes or audiences): one token cannot serve both",
				describeURL(chosenURL), describeURL(u), chosen.Profile.Name, m.Profile.Name).
				WithFix("run tokenhelper once per URL")
		}
	}
	var p *config.Profile
	if explicit {
		if p, err = a.profile(); err != nil {
			return nil, o, err
		}
	} else if chosen != nil {
		p = chosen.Profile
	} else {
		return nil, o, helper.Errorf(helper.KindUsage, "no URL given").WithFix("name a URL, or the profile with -p NAME")
	}
	if chosen != nil {
		if len(o.scopes) == 0 {
			o.scopes = chosen.Scopes
		}
		if len(o.audiences) == 0 {
			o.audiences = chosen.Audiences
		}
	}
	return p, o, nil
}

// describeURL names a URL's origin for messages: never its path or query,
// which may carry a token (?authz=...).
func describeURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "a URL without scheme://host"
	}
	return strings.ToLower(u.Scheme) + "://" + u.Host
}

func originOf(raw string) string { return describeURL(raw) }

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}

func (a *app) runCurl(ctx context.Context, o tokenOptions, args []string) error {
	parsed, err := curl.Parse(args)
	if err != nil {
		return err
	}
	explicit := a.profileFlag != ""
	if parsed.UserConfig && !explicit {
		return helper.Errorf(helper.KindUsage, "tokenhelper cannot see the URLs in your -K/--config file, so it cannot pick the profile (or tell where the token goes)").
			WithFix("name the profile: tokenhelper curl -p NAME ... (tokenhelper's own config file: set TOKENHELPER_CONFIG)")
	}
	// A -K file (allowed with -p only, above) may hold the URLs.
	if len(parsed.URLs) == 0 && !parsed.UserConfig {
		return helper.Errorf(helper.KindUsage, "no URL among curl's arguments").WithFix("see tokenhelper curl --help")
	}
	p, o, err := a.routeURLs(parsed.URLs, o)
	if err != nil {
		return err
	}
	tok, err := a.acquire(ctx, p, a.request(p, o))
	if err != nil {
		return err
	}
	conf, err := curl.Config(tok.AccessToken)
	if err != nil {
		return err
	}
	curlPath, err := execenv.LookPath("curl", a.sys.Getenv("PATH"))
	if err != nil {
		fmt.Fprintln(a.stderr(), "tokenhelper: curl: not found on PATH: install curl (Debian/Ubuntu: apt install curl)")
		return &quietError{code: 127}
	}
	if parsed.Verbose {
		fmt.Fprintln(a.stderr(), "tokenhelper: note: curl -v/--trace shows the request headers, your token included; do not paste that output anywhere")
	}
	child := execenv.Child{
		Path: curlPath, Env: a.sys.Environ(),
		Stdout: a.sys.Stdout, Stderr: a.sys.Stderr,
	}
	if parsed.ReadsStdin {
		// curl needs its stdin: the config goes through fd 3, a pipe
		// that holds it (far below the pipe buffer, so the write never
		// blocks).
		if _, err := os.Stat("/dev/fd/0"); err != nil {
			return helper.Errorf(helper.KindUsage, "curl reads stdin here and this system has no /dev/fd to pass the token another way").
				WithFix("give curl the data as a file instead of stdin (-T FILE, -d @FILE)")
		}
		r, w, err := os.Pipe()
		if err != nil {
			return helper.Wrap(helper.KindInternal, err, "cannot create a pipe for curl's config")
		}
		defer r.Close()
		_, werr := w.WriteString(conf)
		w.Close()
		if werr != nil {
			return helper.Wrap(helper.KindInternal, werr, "cannot write curl's config to the pipe")
		}
		child.ExtraFiles = []*os.File{r}
		child.Stdin = a.sys.Stdin
		child.Args = append([]string{"curl"}, curl.Command(args, parsed, "/dev/fd/3")...)
	} else {
		child.Stdin = strings.NewReader(conf)
		child.Args = append([]string{"curl"}, curl.Command(args, parsed, "-")...)
	}
	a.log.Info("running curl", "profile", p.Name, "fingerprint", helper.Fingerprint(tok.AccessToken), "config", child.Args[parsed.Lead+2])
	code, err := execenv.Run(child, execenv.RunOptions{KeyboardSignals: a.keyboardSignals()})
	if err != nil {
		if se, ok := err.(*execenv.StartError); ok {
			fmt.Fprintln(a.stderr(), "tokenhelper: "+se.Msg)
			return &quietError{code: se.Code}
		}
		return err
	}
	if code != 0 {
		return &quietError{code: code}
	}
	return nil
}

// keyboardSignals tells execenv.Run whether a SIGINT or SIGQUIT came
// from our terminal (which delivered it to the child already).
func (a *app) keyboardSignals() func() bool {
	if f, ok := a.sys.Stdin.(*os.File); ok && a.sys.StdinTerminal {
		return func() bool { return execenv.ForegroundTerminal(f) }
	}
	if f, ok := a.sys.Stderr.(*os.File); ok && a.sys.StderrTerminal {
		return func() bool { return execenv.ForegroundTerminal(f) }
	}
	return nil
}
