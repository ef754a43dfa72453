// Package cli is tokenhelper's command line: subcommands, wiring of the
// backends and integrations, and the mapping of errors to exit codes. It is
// the one layer that sees everything; main is a few lines around Main.
package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
)

// Version is set at build time with -ldflags "-X .../cli.Version=v1.2.3";
// otherwise the module version or VCS revision from the build info is used.
var Version = ""

func version() string {
	if Version != "" {
		return Version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(devel)"
	}
	v := bi.Main.Version
	var rev, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if (v == "" || v == "(devel)") && rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		return "(devel) " + rev + dirty
	}
	if v == "" {
		v = "(devel)"
	}
	return v
}

// app carries the global flags and the lazily loaded configuration.
type app struct {
	sys *System

	profileFlag string
	configFlag  string
	verbose     int

	log *slog.Logger
	cfg *cfgState
}

// Main runs the tokenhelper command line with args (args[0] is the program
// name, which selects a protocol front-end when tokenhelper is installed
// under a helper name such as git-credential-tokenhelper) and returns the
// process exit code.
func Main(ctx context.Context, args []string, sys *System) int {
	if len(args) == 0 {
		args = []string{"tokenhelper"}
	}
	args = append(aliasArgs(filepath.Base(args[0])), args[1:]...)
	a := &app{sys: sys, log: slog.New(slog.DiscardHandler)}
	root := a.rootCommand()
	root.SetArgs(args)
	root.SetIn(sys.Stdin)
	root.SetOut(sys.Stdout)
	root.SetErr(sys.Stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	// A child's exit status (exec, curl) passes through even when a
	// signal we forwarded to it also cancelled ctx.
	var quiet *quietError
	if errors.As(err, &quiet) {
		return quiet.code
	}
	if ctx.Err() != nil && !helper.IsKind(err, helper.KindUsage) {
		fmt.Fprintln(sys.Stderr, "tokenhelper: interrupted")
		return 130
	}
	var he *helper.Error
	if !errors.As(err, &he) {
		// Only cobra itself returns plain errors (unknown command or
		// flag, wrong number of arguments): our run functions wrap
		// theirs (see runE).
		he = &helper.Error{Kind: helper.KindUsage, Msg: err.Error(), Fix: "see tokenhelper --help"}
	}
	fmt.Fprintln(sys.Stderr, "tokenhelper: "+oneLine(he.Error()))
	return he.Kind.ExitCode()
}

// aliasArgs maps the program name to the subcommand it stands for.
func aliasArgs(prog string) []string {
	switch prog {
	case "git-credential-tokenhelper":
		return []string{"git-credential"}
	case "docker-credential-tokenhelper":
		return []string{"docker-credential"}
	}
	return nil
}

// quietError ends the process with a code without printing anything (the
// command already said what it had to, e.g. curl's own exit status).
type quietError struct{ code int }

func (q *quietError) Error() string { return fmt.Sprintf("exit status %d", q.code) }

func oneLine(s string) string {
	s = strings.TrimSpace(s)
	return strings.Join(strings.Fields(strings.ReplaceAll(s, "\n", " ")), " ")
}

// runE adapts a run function so that any error that is not already a
// *helper.Error (a bug or an unexpected failure) is reported as internal
// rather than mistaken for a usage error.
func runE(fn func(cmd *cobra.Command, args []string) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		err := fn(cmd, args)
		if err == nil {
			return nil
		}
		var he *helper.Error
		var q *quietError
		if errors.As(err, &he) || errors.As(err, &q) {
			return err
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return helper.Wrap(helper.KindUnavailable, err, "timed out: "+oneLine(err.Error()))
		}
		return helper.Wrap(helper.KindInternal, err, oneLine(err.Error()))
	}
}

func (a *app) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "tokenhelper",
		Short: "Bearer tokens for grid tools, through the protocols they already speak",
		Long: `tokenhelper gets OAuth2/OIDC bearer tokens (WLCG, INDIGO IAM) from a backend —
a running oidc-agent, its own OAuth client, a token file, or a plugin — and hands
them to tools the way they expect: WLCG Bearer Token Discovery files for xrootd,
gfal and davix, a git credential helper, a curl wrapper, rclone's
bearer_token_command, and an exec wrapper that keeps a token file fresh.`,
		Version:           version(),
		SilenceUsage:      true,
		SilenceErrors:     true,
		DisableAutoGenTag: true,
		PersistentPreRun: func(cmd *cobra.Command, args []string) {
			bad := a.verboseFromEnv(cmd)
			a.setupLogging()
			if bad != "" {
				a.log.Warn("ignoring " + EnvVerbose + ": not a number from 0 to 3")
			}
		},
	}
	root.SetVersionTemplate("tokenhelper {{.Version}}\n")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &helper.Error{Kind: helper.KindUsage, Msg: err.Error(), Fix: "see tokenhelper " + cmd.Name() + " --help"}
	})
	pf := root.PersistentFlags()
	pf.StringVarP(&a.profileFlag, "profile", "p", "", "profile to use (default: $TOKENHELPER_PROFILE, then default_profile)")
	pf.StringVar(&a.configFlag, "config", "", "configuration file (default: $TOKENHELPER_CONFIG, then $XDG_CONFIG_HOME/tokenhelper/config.toml)")
	pf.CountVarP(&a.verbose, "verbose", "v", "more diagnostics on stderr (repeat for debug; default $TOKENHELPER_VERBOSE); never shows token material")
	_ = root.RegisterFlagCompletionFunc("profile", a.completeProfiles)

	used := map[string]bool{}
	cmds := a.commands()
	for _, c := range cmds {
		used[c.GroupID] = true
	}
	for _, g := range []*cobra.Group{
		{ID: "tokens", Title: "Tokens:"},
		{ID: "tools", Title: "Tool integrations:"},
		{ID: "setup", Title: "Setup and state:"},
	} {
		if used[g.ID] {
			root.AddGroup(g)
		}
	}
	for _, c := range cmds {
		root.AddCommand(c)
	}
	root.SetHelpCommandGroupID("setup")
	root.SetCompletionCommandGroupID("setup")
	return root
}

// EnvVerbose sets the verbosity when no -v flag is given: "1" is -v, "2"
// is -vv. It reaches tokenhelper where no flag can be added: git and docker
// credential helpers, rclone's bearer_token_command, kubectl exec plugins.
const EnvVerbose = "TOKENHELPER_VERBOSE"

// verboseFromEnv applies $TOKENHELPER_VERBOSE unless -v was given. It
// returns the value when it is not a number from 0 to 3 (then ignored).
func (a *app) verboseFromEnv(cmd *cobra.Command) (bad string) {
	if f := cmd.Flags().Lookup("verbose"); f != nil && f.Changed {
		return ""
	}
	v, ok := a.sys.LookupEnv(EnvVerbose)
	v = strings.TrimSpace(v)
	if !ok || v == "" {
		return ""
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > 3 {
		return v
	}
	a.verbose = n
	return ""
}

// setupLogging sends diagnostics to stderr: warnings by default, -v for
// info, -vv for debug (or $TOKENHELPER_VERBOSE). Log records carry
// fingerprints, never tokens.
func (a *app) setupLogging() {
	level := slog.LevelWarn
	switch {
	case a.verbose >= 2:
		level = slog.LevelDebug
	case a.verbose == 1:
		level = slog.LevelInfo
	}
	a.log = slog.New(slog.NewTextHandler(a.sys.Stderr, &slog.HandlerOptions{
		Level: level,
		ReplaceAttr: func(groups []string, at slog.Attr) slog.Attr {
			if len(groups) == 0 && at.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return at
		},
	}))
}

func (a *app) stdout() io.Writer { return a.sys.Stdout }
func (a *app) stderr() io.Writer { return a.sys.Stderr }
