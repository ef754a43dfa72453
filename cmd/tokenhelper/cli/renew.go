package cli

import (
	"context"
	"fmt"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/helper/discovery"
	"github.com/tokenhelper/tokenhelper/integrations/renew"
)

// DefaultRenewEvery is how often `renew --once` is assumed to run (the
// documented cron line and systemd timer).
const DefaultRenewEvery = 10 * time.Minute

func (a *app) renewCommand() *cobra.Command {
	var once, daemon, force bool
	var file string
	var o tokenOptions
	var minValid, every time.Duration
	cmd := &cobra.Command{
		Use:     "renew (--once | --daemon) [-p NAME [--file PATH] [-s SCOPE]... [--aud AUD]... [--min-valid D]]",
		GroupID: "tokens",
		Short:   "Keep token files fresh: the WLCG discovery file and per-service files (cron or daemon)",
		Long: `Keep token files fresh, as osg-token-renewer does: each output is a file (default: the
WLCG discovery location $XDG_RUNTIME_DIR/bt_u$UID, else /tmp/bt_u$UID) holding a token of
a profile, written with mode 0600, atomically.

The outputs are the [[renew]] entries of the configuration (profile, scopes, audiences,
file, min_valid; see docs/config.md), or, with -p or --file, a single output from the
flags. A token is renewed when about a third of its lifetime is left, or when less than
min_valid is left, whichever comes first.

--once renews what is due and exits (for cron or a systemd timer): also what would
fall due before the next run, --every later (default 10m: match your cron interval).
Nothing is printed unless something fails (or -v). The exit status is that of the first
failure (4: log in first, 5: provider unreachable, ...).

--daemon stays running: renewals on a jittered schedule, one log line per renewal and
per failure (no token material). When the provider is down it keeps retrying with
backoff and leaves the files alone — a still-valid file is never removed — and it
restores a file someone removed. SIGTERM or SIGINT stop it cleanly (exit 0). A systemd
user service and timer are in integrations/systemd; see docs/renew.md.`,
		Example: `  */10 * * * * tokenhelper renew --once            # crontab -e
  systemctl --user enable --now tokenhelper-renew.service
  tokenhelper renew --daemon -p wlcg --file ~/.tokens/wlcg -s storage.read:/`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if once == daemon {
				return &helper.Error{Kind: helper.KindUsage, Msg: "give exactly one of --once (cron) and --daemon", Fix: "see tokenhelper renew --help"}
			}
			single := a.profileFlag != "" || cmd.Flags().Changed("file") || len(o.scopes) > 0 || len(o.audiences) > 0 || cmd.Flags().Changed("min-valid")
			outs, err := a.renewOutputs(single, file, o, minValid)
			if err != nil {
				return err
			}
			r := a.renewer(daemon)
			if daemon || a.verbose > 0 {
				a.warnShadowed(outs)
			}
			if once {
				return a.renewOnce(cmd.Context(), r, outs, renew.OnceOptions{Force: force, Within: every})
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			fmt.Fprintf(a.stderr(), "tokenhelper: renew daemon keeping %s fresh\n", describeOutputs(r, outs))
			err = r.Run(ctx, outs)
			fmt.Fprintln(a.stderr(), "tokenhelper: renew daemon stopped")
			return err
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&once, "once", false, "renew what is due now and exit (cron, systemd timer)")
	f.BoolVar(&daemon, "daemon", false, "keep running and renew on schedule (systemd service)")
	f.StringVar(&file, "file", "", "single output: the file to keep fresh (default: the WLCG discovery location)")
	f.StringArrayVarP(&o.scopes, "scope", "s", nil, "single output: scope to request (repeatable; default: the profile's)")
	f.StringArrayVar(&o.audiences, "aud", nil, "single output: audience to request (repeatable; default: the profile's)")
	f.DurationVar(&minValid, "min-valid", 0, "single output: renew at the latest when less than this is left")
	f.DurationVar(&every, "every", DefaultRenewEvery, "--once: how often it runs; tokens due before the next run are renewed now")
	f.BoolVar(&force, "force", false, "--once: renew every output now, however long it is still valid")
	return cmd
}

// renewOutputs builds the outputs: one from the flags (single) or the
// configuration's [[renew]] entries.
func (a *app) renewOutputs(single bool, file string, o tokenOptions, minValid time.Duration) ([]renew.Output, error) {
	cfg, _, err := a.config()
	if err != nil {
		return nil, err
	}
	type entry struct {
		p     *config.Profile
		o     tokenOptions
		file  string
		min   time.Duration
		where string
	}
	var entries []entry
	if single {
		p, err := a.profile()
		if err != nil {
			return nil, err
		}
		if p == nil {
			return nil, helper.Errorf(helper.KindConfig, "no profile to renew from").
				WithFix("name it with -p NAME (see tokenhelper config example)")
		}
		if file != "" {
			if file, err = filepath.Abs(file); err != nil {
				return nil, helper.Wrap(helper.KindUsage, err, "cannot resolve --file")
			}
		}
		entries = append(entries, entry{p: p, o: o, file: file, min: minValid, where: "--file"})
	} else {
		if len(cfg.Renew) == 0 {
			where := "the configuration file"
			if cfg.Path != "" {
				where = cfg.Path
			}
			return nil, helper.Errorf(helper.KindConfig, "nothing to renew: %s has no [[renew]] entry", where).
				WithFix("add one (profile = \"NAME\", optional file = \"/path\"; see docs/renew.md), or pass -p NAME [--file PATH]")
		}
		for i, r := range cfg.Renew {
			p, err := cfg.Select(r.Profile, "")
			if err != nil {
				return nil, err
			}
			entries = append(entries, entry{p: p, o: tokenOptions{scopes: r.Scopes, audiences: r.Audiences}, file: r.File,
				min: r.MinValid.D(), where: "renew[" + strconv.Itoa(i) + "]"})
		}
	}
	denv := a.discoveryEnv()
	outs := make([]renew.Output, 0, len(entries))
	for _, e := range entries {
		if e.p.Backend == config.BackendFile {
			target := e.file
			if target == "" {
				target = discovery.DefaultPath(denv)
			}
			if e.p.TokenFile == "" || samePath(e.p.TokenFile, target) {
				return nil, helper.Errorf(helper.KindConfig, "%s: profile %q reads its token from the file it would write (backend file, token_file %s)",
					e.where, e.p.Name, orDiscovery(e.p.TokenFile)).
					WithFix("renew from a profile that can get new tokens (native, oidc-agent), or write to another file")
			}
		}
		outs = append(outs, renew.Output{
			Name: "profile " + quoteName(e.p.Name), Path: e.file,
			Source: a.renewSource(e.p, e.o), MinValid: e.min,
		})
	}
	return outs, nil
}

func orDiscovery(p string) string {
	if p == "" {
		return "unset: discovery"
	}
	return p
}

func samePath(a, b string) bool {
	aa, err1 := filepath.Abs(a)
	bb, err2 := filepath.Abs(b)
	return err1 == nil && err2 == nil && filepath.Clean(aa) == filepath.Clean(bb)
}

func (a *app) renewOnce(ctx context.Context, r *renew.Renewer, outs []renew.Output, oo renew.OnceOptions) error {
	var first error
	for _, res := range r.Once(ctx, outs, oo) {
		switch {
		case res.Err != nil:
			if first == nil {
				first = res.Err
			}
		case !res.Renewed && a.verbose > 0:
			what := "no token"
			if res.Token != nil {
				what = helper.Fingerprint(res.Token.AccessToken)
				if !res.Token.Expiry.IsZero() {
					what += ", valid until " + res.Token.Expiry.UTC().Format(time.RFC3339)
				}
			}
			fmt.Fprintf(a.stderr(), "tokenhelper: %s (%s) is still fresh: %s\n", res.Path, res.Output.Name, what)
		}
	}
	if first != nil {
		// Each failure was reported on its own line already.
		if ctx.Err() != nil {
			return first
		}
		return &quietError{code: helper.ExitCode(first)}
	}
	return nil
}

// warnShadowed says when a discovery-location output would not be what
// tools in this environment read.
func (a *app) warnShadowed(outs []renew.Output) {
	denv := a.discoveryEnv()
	for _, o := range outs {
		if o.Path != "" {
			continue
		}
		for _, s := range discovery.Shadowed(denv, "") {
			fmt.Fprintf(a.stderr(), "tokenhelper: warning: %s is set in this environment, and tools started from it read that before %s\n", s, discovery.DefaultPath(denv))
		}
	}
}

func describeOutputs(r *renew.Renewer, outs []renew.Output) string {
	parts := make([]string, 0, len(outs))
	for _, o := range outs {
		p := o.Path
		if p == "" {
			p = discovery.DefaultPath(r.Env)
		}
		parts = append(parts, p+" ("+o.Name+")")
	}
	return strings.Join(parts, ", ")
}
