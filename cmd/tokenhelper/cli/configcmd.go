package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper/config"
)

func (a *app) configCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "config",
		GroupID: "setup",
		Short:   "Show, check or start the configuration file",
		Args:    cobra.NoArgs,
	}
	cmd.AddCommand(&cobra.Command{
		Use:   "path",
		Short: "Print the configuration file's path",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			dirs, err := config.ResolveDirs(a.sys.Getenv)
			if err != nil {
				return err
			}
			path := dirs.ConfigFile
			if a.configFlag != "" {
				path = a.configFlag
			}
			fmt.Fprintln(a.stdout(), path)
			return nil
		}),
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Read and validate the configuration; print a summary",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			cfg, dirs, err := a.config()
			if err != nil {
				return err
			}
			w := a.stdout()
			if len(cfg.Profiles) == 0 {
				fmt.Fprintf(w, "%s: no profiles (token follows WLCG discovery; see tokenhelper config example)\n", dirs.ConfigFile)
				return nil
			}
			fmt.Fprintf(w, "%s: OK, %d profile(s), %d route(s)\n", dirs.ConfigFile, len(cfg.Profiles), len(cfg.Routes))
			for _, name := range cfg.ProfileNames() {
				p := cfg.Profiles[name]
				mark := " "
				if name == cfg.DefaultProfile {
					mark = "*"
				}
				detail := p.Issuer
				switch p.Backend {
				case config.BackendOIDCAgent:
					detail = "account " + p.Account
				case config.BackendFile:
					detail = p.TokenFile
					if detail == "" {
						detail = "WLCG discovery"
					}
				}
				fmt.Fprintf(w, " %s %-16s %-11s %s\n", mark, name, p.Backend, detail)
			}
			for _, r := range cfg.Routes {
				extra := ""
				if len(r.Scopes) > 0 {
					extra = " scopes=" + strings.Join(r.Scopes, ",")
				}
				fmt.Fprintf(w, "   route %s → %s%s\n", r.URL, r.Profile, extra)
			}
			return nil
		}),
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "example",
		Short: "Print a commented example configuration",
		Args:  cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			_, err := fmt.Fprint(a.stdout(), config.Example)
			return err
		}),
	})
	return cmd
}

func (a *app) completeProfiles(cmd *cobra.Command, args []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	cfg, _, err := a.config()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return cfg.ProfileNames(), cobra.ShellCompDirectiveNoFileComp
}
