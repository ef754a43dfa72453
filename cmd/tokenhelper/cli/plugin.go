package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/plugins"
	"github.com/tokenhelper/tokenhelper/plugins/rpc/remote"
)

// pluginInfoTimeout bounds asking one plugin for its version.
const pluginInfoTimeout = 10 * time.Second

func (a *app) pluginCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "plugin",
		GroupID: "setup",
		Short:   "List backends and external plugins; pin a plugin's checksum",
		Long: `Backends are built in (file, native, oidc-agent: they run inside tokenhelper, or in
a process of their own with isolate = true) or external plugins: executables
tokenhelper-plugin-NAME in the plugin directories ($XDG_DATA_HOME/tokenhelper/plugins,
then plugin_dirs), used by profiles with backend = "NAME". See docs/plugins.md.`,
		Args: cobra.NoArgs,
	}
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "Show built-in backends and installed plugins with versions, paths and pins",
		Long: `Show the built-in backends and every tokenhelper-plugin-NAME in the plugin
directories (or pinned by path in [plugins.NAME]). Each plugin is checked as it
would be before use (pinned checksum, or owner and permissions) and, if it
passes, started once to ask its version.`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			rep, err := a.pluginReport(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			rep.write(a.stdout())
			return nil
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print a JSON object")
	cmd.AddCommand(list)
	cmd.AddCommand(&cobra.Command{
		Use:   "pin NAME",
		Short: "Print the [plugins.NAME] lines that pin the installed plugin's checksum",
		Long: `Print the configuration lines that pin tokenhelper-plugin-NAME to the checksum of
the executable installed now. Add them to config.toml: tokenhelper then refuses to
run the plugin if the file changes (and no longer requires it to be writable only
by you or root).`,
		Example: `  tokenhelper plugin pin command >> ~/.config/tokenhelper/config.toml`,
		Args:    cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			cfg, dirs, err := a.config()
			if err != nil {
				return err
			}
			pins := cfg.Plugins
			if pin, ok := pins[args[0]]; ok && pin.Path == "" {
				pins = nil // find it where it is, whatever its pinned sum says
			}
			t, err := remote.Find(args[0], dirs.PluginDirs, pins)
			if err != nil {
				return err
			}
			sum, err := remote.SHA256File(t.Path)
			if err != nil {
				return helper.Wrap(helper.KindConfig, err, fmt.Sprintf("cannot read %s", t.Path))
			}
			fmt.Fprintf(a.stdout(), "[plugins.%s]\nsha256 = %q\n", t.Name, sum)
			if pin, ok := cfg.Plugins[t.Name]; ok && pin.Path != "" {
				fmt.Fprintf(a.stdout(), "path = %q\n", pin.Path)
			}
			return nil
		}),
	})
	cmd.AddCommand(&cobra.Command{
		Use:    "serve NAME",
		Short:  "Serve built-in backend NAME over go-plugin (tokenhelper starts this itself)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			if _, ok := plugins.Lookup(args[0]); !ok {
				return helper.Errorf(helper.KindUsage, "no built-in backend %q", args[0]).WithFix("see tokenhelper plugin list")
			}
			host, err := remote.LocateHost(a.sys.LookupEnv)
			if err != nil {
				return err
			}
			// go-plugin lives in the companion, which this process becomes.
			env := os.Environ()
			if a.sys.Environ != nil {
				env = a.sys.Environ()
			}
			err = syscall.Exec(host, []string{remote.HostCommand, "serve", args[0]}, env)
			return helper.Wrap(helper.KindInternal, err, fmt.Sprintf("cannot run %s: %v", host, err))
		}),
	})
	return cmd
}

// pluginReport is `plugin list`'s content (and its --json form).
type pluginReport struct {
	Builtins   []builtinEntry `json:"builtins"`
	PluginDirs []string       `json:"plugin_dirs"`
	Plugins    []pluginEntry  `json:"plugins"`
	// Missing are profiles whose backend is neither built in nor installed.
	Missing    []missingEntry `json:"missing,omitempty"`
	PluginHost string         `json:"pluginhost"`
	HostError  string         `json:"pluginhost_error,omitempty"`
}

type builtinEntry struct {
	Name    string `json:"name"`
	Summary string `json:"summary"`
	Cached  bool   `json:"cached"`
	// CachedDownscoped: only requests with scopes or audiences are cached.
	CachedDownscoped bool     `json:"cached_downscoped,omitempty"`
	Profiles         []string `json:"profiles,omitempty"`
	Isolated         []string `json:"isolated_profiles,omitempty"`
}

type pluginEntry struct {
	Name         string   `json:"name"`
	Path         string   `json:"path"`
	Version      string   `json:"version,omitempty"`
	Capabilities []string `json:"capabilities,omitempty"`
	Pinned       bool     `json:"pinned"`
	SHA256       string   `json:"sha256,omitempty"`
	Pin          string   `json:"pin"` // "ok", "mismatch", "not pinned"
	Error        string   `json:"error,omitempty"`
	Shadowed     []string `json:"shadowed,omitempty"`
	Profiles     []string `json:"profiles,omitempty"`
}

type missingEntry struct {
	Profile string `json:"profile"`
	Backend string `json:"backend"`
}

func (a *app) pluginReport(ctx context.Context) (*pluginReport, error) {
	cfg, dirs, err := a.config()
	if err != nil {
		return nil, err
	}
	users := map[string][]string{}
	isolated := map[string][]string{}
	for _, name := range cfg.ProfileNames() {
		p := cfg.Profiles[name]
		if _, ok := plugins.Lookup(p.Backend); ok && p.Isolate {
			isolated[p.Backend] = append(isolated[p.Backend], name)
		}
		users[p.Backend] = append(users[p.Backend], name)
	}
	rep := &pluginReport{PluginDirs: dirs.PluginDirs}
	for _, b := range plugins.Builtins() {
		rep.Builtins = append(rep.Builtins, builtinEntry{Name: b.Name, Summary: b.Summary, Cached: b.Cached, CachedDownscoped: b.CacheDownscoped, Profiles: users[b.Name], Isolated: isolated[b.Name]})
	}
	rep.PluginHost, err = remote.LocateHost(a.sys.LookupEnv)
	if err != nil {
		rep.HostError = oneLine(err.Error())
	}
	found := remote.List(dirs.PluginDirs, cfg.Plugins)
	seen := map[string]bool{}
	rep.Plugins = make([]pluginEntry, len(found))
	var wg sync.WaitGroup
	for i, f := range found {
		seen[f.Name] = true
		e := &rep.Plugins[i]
		*e = pluginEntry{Name: f.Name, Path: f.Path, Pinned: f.Pinned && f.Pin.SHA256 != "", Shadowed: f.Shadowed, Profiles: users[f.Name], Pin: "not pinned"}
		if _, builtin := plugins.Lookup(f.Name); builtin {
			e.Error = "shadowed by the built-in backend of the same name: never used"
			continue
		}
		if sum, err := remote.SHA256File(f.Path); err == nil {
			e.SHA256 = sum
		}
		t := f.Target()
		if _, err := remote.Check(t, a.sys.UID); err != nil {
			if e.Pinned && helper.IsKind(err, helper.KindUnsafe) {
				e.Pin = "mismatch"
			}
			e.Error = oneLine(err.Error()) + " (not run)"
			continue
		}
		if e.Pinned {
			e.Pin = "ok"
		}
		if rep.HostError != "" {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, pluginInfoTimeout)
			defer cancel()
			be := remote.New(nil, t, a.remoteConfig(dirs, rep.PluginHost, io.Discard))
			info, err := be.Info(ctx)
			if err != nil {
				e.Error = oneLine(err.Error())
				return
			}
			e.Version = info.Version
			e.Capabilities = []string{"token"}
			for _, c := range []struct {
				ok   bool
				name string
			}{{info.Login, "login"}, {info.Logout, "logout"}, {info.Status, "status"}} {
				if c.ok {
					e.Capabilities = append(e.Capabilities, c.name)
				}
			}
		}()
	}
	wg.Wait()
	for _, name := range cfg.ProfileNames() {
		p := cfg.Profiles[name]
		if _, ok := plugins.Lookup(p.Backend); !ok && !seen[p.Backend] {
			rep.Missing = append(rep.Missing, missingEntry{Profile: name, Backend: p.Backend})
		}
	}
	return rep, nil
}

// remoteConfig is how `plugin list` reaches a plugin.
func (a *app) remoteConfig(dirs config.Dirs, host string, stderr io.Writer) remote.Config {
	c := remote.Config{HostPath: host, LookupEnv: a.sys.LookupEnv, Stderr: stderr,
		Host: remote.Host{Dirs: dirs, UID: a.sys.UID, TmpDir: a.sys.TmpDir, Verbose: a.verbose, Version: version()}}
	if a.sys.Environ != nil {
		c.Env = a.sys.Environ()
	}
	return c
}

func (r *pluginReport) write(w io.Writer) {
	fmt.Fprintln(w, "Built-in backends (in-process; isolate = true runs one in a process of its own):")
	for _, b := range r.Builtins {
		fmt.Fprintf(w, "  %-11s %s\n", b.Name, b.Summary)
		if len(b.Profiles) > 0 {
			line := "used by " + strings.Join(b.Profiles, ", ")
			if len(b.Isolated) > 0 {
				line += " (isolated: " + strings.Join(b.Isolated, ", ") + ")"
			}
			fmt.Fprintf(w, "  %-11s %s\n", "", line)
		}
	}
	fmt.Fprintln(w)
	dirs := "none"
	if len(r.PluginDirs) > 0 {
		dirs = strings.Join(r.PluginDirs, ", ")
	}
	fmt.Fprintf(w, "External plugins (tokenhelper-plugin-NAME in %s):\n", dirs)
	if len(r.Plugins) == 0 {
		fmt.Fprintln(w, "  none installed")
	}
	for _, p := range r.Plugins {
		v := p.Version
		if v == "" {
			v = "?"
		}
		fmt.Fprintf(w, "  %-11s %s  %s\n", p.Name, v, p.Path)
		pin := "checksum not pinned"
		switch p.Pin {
		case "ok":
			pin = "checksum pinned, matches"
		case "mismatch":
			pin = "checksum pinned, DOES NOT MATCH"
		}
		if p.SHA256 != "" {
			pin += " (sha256 " + p.SHA256 + ")"
		}
		fmt.Fprintf(w, "  %-11s %s\n", "", pin)
		if len(p.Capabilities) > 0 {
			fmt.Fprintf(w, "  %-11s serves %s\n", "", strings.Join(p.Capabilities, ", "))
		}
		if len(p.Profiles) > 0 {
			fmt.Fprintf(w, "  %-11s used by %s\n", "", strings.Join(p.Profiles, ", "))
		}
		for _, s := range p.Shadowed {
			fmt.Fprintf(w, "  %-11s also found, not used: %s\n", "", s)
		}
		if p.Error != "" {
			fmt.Fprintf(w, "  %-11s ERROR: %s\n", "", p.Error)
		}
	}
	for _, m := range r.Missing {
		fmt.Fprintf(w, "\nProfile %s uses backend %q, which is neither built in nor installed as tokenhelper-plugin-%s.\n", m.Profile, m.Backend, m.Backend)
	}
	if r.HostError != "" {
		fmt.Fprintf(w, "\nPlugins cannot run: %s\n", r.HostError)
	}
}
