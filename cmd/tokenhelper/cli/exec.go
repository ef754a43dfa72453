package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/helper/safefile"
	"github.com/tokenhelper/tokenhelper/integrations/execenv"
	"github.com/tokenhelper/tokenhelper/integrations/renew"
)

const execEnvTokenHelp = "also set BEARER_TOKEN to the token (gfal2 2.21 reads only that); it cannot be renewed inside the running command"

func (a *app) execCommand() *cobra.Command {
	var o tokenOptions
	var envToken bool
	cmd := &cobra.Command{
		Use:     "exec [-p NAME] [-s SCOPE]... [--aud AUD]... [--env-token] [--] COMMAND [ARG...]",
		GroupID: "tools",
		Short:   "Run a command with BEARER_TOKEN_FILE pointing to a private token file kept fresh while it runs",
		Long: `Run COMMAND with BEARER_TOKEN_FILE naming a private token file (mode 0600, in a 0700
directory under $XDG_RUNTIME_DIR/tokenhelper, else ~/.cache/tokenhelper/run). WLCG Bearer
Token Discovery readers — xrdcp/xrdfs (ztn), gfal's xrootd plugin, scitokens-cpp, htgettoken
users — find it there. While COMMAND runs, tokenhelper replaces the token before it
expires (when about a third of its lifetime is left, or --min-valid, with a little
jitter); when the provider fails it retries with backoff while the old token is still
valid and says so once on stderr. The file and its directory are removed when COMMAND
ends.

An inherited BEARER_TOKEN is removed from COMMAND's environment (tools read it before
the file, and an old one would shadow the fresh file). With --env-token BEARER_TOKEN is
set to the token instead, for gfal2 2.21's HTTP plugin, which reads only that variable:
an environment variable cannot change inside a running process, so that copy is NOT
renewed — use it for commands shorter than the token's lifetime.

Signals (INT, TERM, HUP, QUIT, USR1, USR2) are passed on to COMMAND, and its exit status
is tokenhelper's: N when it exits with N, 128+S when signal S kills it, 127 when it is
not found, 126 when it cannot be executed. Before COMMAND starts, failures use
tokenhelper's exit codes (4: log in first, 5: provider unreachable, ...).`,
		Example: `  tokenhelper exec -- xrdcp -f roots://se.example.org//data/f /tmp/f
  tokenhelper exec -p wlcg -s storage.modify:/alice -- rclone copy out dcache:alice/out
  tokenhelper exec --env-token -- gfal-copy file:///tmp/f davs://se.example.org:2880/data/f
  tokenhelper exec -- sh -c 'cat "$BEARER_TOKEN_FILE"'`,
		Args: cobra.MinimumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			o.resolve(cmd)
			return a.runExec(cmd.Context(), o, envToken, args, "")
		}),
	}
	cmd.Flags().SetInterspersed(false)
	o.register(cmd)
	cmd.Flags().BoolVar(&envToken, "env-token", false, execEnvTokenHelp)
	return cmd
}

// runExec gets the first token (a person may be asked, before COMMAND
// starts), then runs argv with the renewed token file. note, when set, is
// printed on stderr with the file's path once it is written.
func (a *app) runExec(ctx context.Context, o tokenOptions, envToken bool, argv []string, note string) error {
	tok, p, err := a.token(ctx, o)
	if err != nil {
		return err
	}
	path, err := execenv.LookPath(argv[0], a.sys.Getenv("PATH"))
	if err != nil {
		return a.startError(err)
	}
	base, err := a.execBase()
	if err != nil {
		return err
	}
	req := a.request(p, o)
	code, err := execenv.Exec(execenv.Options{
		Child: execenv.Child{
			Path: path, Args: argv, Env: a.sys.Environ(),
			Stdin: a.sys.Stdin, Stdout: a.sys.Stdout, Stderr: a.sys.Stderr,
		},
		Base:     base,
		Token:    tok,
		Source:   a.renewSource(p, o),
		Name:     "profile " + quoteName(p.Name),
		MinValid: req.MinValid,
		EnvToken: envToken,
		Renewer:  a.renewer(false),
		Run:      execenv.RunOptions{KeyboardSignals: a.keyboardSignals()},
		Ready: func(file string) {
			a.log.Info("token file", "path", file, "profile", p.Name, "fingerprint", helper.Fingerprint(tok.AccessToken))
			if note != "" {
				fmt.Fprintf(a.stderr(), note, file)
			}
		},
	})
	if err != nil {
		return a.startError(err)
	}
	if code != 0 {
		return &quietError{code: code}
	}
	return nil
}

// startError reports a command that could not be started with the shell's
// exit codes (127, 126); other errors pass through.
func (a *app) startError(err error) error {
	if se, ok := err.(*execenv.StartError); ok {
		fmt.Fprintln(a.stderr(), "tokenhelper: "+se.Msg)
		return &quietError{code: se.Code}
	}
	return err
}

// execBase is where exec's private token directories go:
// $XDG_RUNTIME_DIR/tokenhelper when XDG_RUNTIME_DIR is a directory of
// ours, else the cache directory's run/.
func (a *app) execBase() (string, error) {
	_, dirs, err := a.config()
	if err != nil {
		return "", err
	}
	if dirs.RuntimeDir != "" {
		if fi, err := os.Stat(dirs.RuntimeDir); err == nil && fi.IsDir() {
			if uid, ok := safefile.Owner(fi); !ok || uid == a.sys.UID {
				return filepath.Join(dirs.RuntimeDir, "tokenhelper"), nil
			}
		}
	}
	if dirs.CacheDir == "" {
		return "", helper.Errorf(helper.KindConfig, "no directory for the token file: neither XDG_RUNTIME_DIR nor a cache directory is usable").
			WithFix("set XDG_RUNTIME_DIR or HOME")
	}
	return filepath.Join(dirs.CacheDir, "run"), nil
}

// renewSource gets renewed tokens for profile p: the same request as the
// first token, never interactive, valid beyond what the renewer asks.
func (a *app) renewSource(p *config.Profile, o tokenOptions) renew.Source {
	return func(ctx context.Context, minValid time.Duration) (*helper.Token, error) {
		req := a.request(p, o)
		req.Interactive = false
		req.Force = false
		if minValid > req.MinValid {
			req.MinValid = minValid
		}
		return a.acquire(ctx, p, req)
	}
}

// renewer logs failures on stderr always and renewals with -v (daemon:
// always, one line each, for the journal).
func (a *app) renewer(daemon bool) *renew.Renewer {
	r := &renew.Renewer{
		Env:          a.discoveryEnv(),
		EveryFailure: daemon,
		Warn:         func(line string) { fmt.Fprintln(a.stderr(), "tokenhelper: "+line) },
	}
	if daemon || a.verbose > 0 {
		r.Info = func(line string) { fmt.Fprintln(a.stderr(), "tokenhelper: "+line) }
	}
	return r
}
