package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/config"
	"github.com/tokenhelper/tokenhelper/plugins/native"
)

// nativeProfile selects the profile and insists it uses the native backend.
func (a *app) nativeProfile(nf *nativeFlags, what string) (*native.Backend, error) {
	p, err := a.profile()
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, helper.Errorf(helper.KindNoProfile, "no profile to %s", what).WithFix("name one with -p NAME")
	}
	if p.Backend != config.BackendNative {
		return nil, helper.Errorf(helper.KindUsage, "profile %q uses backend %s, which keeps no passphrase-protected state", p.Name, p.Backend)
	}
	return a.nativeBackend(p, nf)
}

func (a *app) passwdCommand() *cobra.Command {
	var nf nativeFlags
	cmd := &cobra.Command{
		Use:     "passwd",
		GroupID: "setup",
		Short:   "Change the passphrase that protects a profile's refresh token and client secret",
		Long: `Re-encrypt the profile's key under a new passphrase, typed twice at the terminal.

The current key is unlocked by --pw-env/--pw-file/--pw-cmd, the profile's
passphrase_* settings, the kernel-keyring unlock left by a recent login (so a
forgotten passphrase can still be replaced while the profile is unlocked), or a
prompt. The refresh token and client secret stay valid: no new login is needed.`,
		Example: `  tokenhelper passwd -p wlcg`,
		Args:    cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			be, err := a.nativeProfile(&nf, "change the passphrase of")
			if err != nil {
				return err
			}
			if err := be.ChangePassphrase(cmd.Context()); err != nil {
				return err
			}
			fmt.Fprintln(a.stderr(), "passphrase changed")
			return nil
		}),
	}
	nf.registerPassphrase(cmd)
	return cmd
}

func (a *app) lockCommand() *cobra.Command {
	var nf nativeFlags
	return &cobra.Command{
		Use:     "lock",
		GroupID: "setup",
		Short:   "Forget a profile's unlock: the next refresh needs the passphrase again",
		Long: `After a passphrase is typed, or read from passphrase_env, passphrase_file or
passphrase_cmd, tokenhelper keeps the profile unlocked for unlock_for (default 12h) in
the kernel keyring, so refreshes need neither the passphrase nor its scrypt work.
lock removes that unlock now (for example before leaving a shared login node, or to
make a changed passphrase source be checked at once). Cached access tokens stay usable
until they expire.`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			be, err := a.nativeProfile(&nf, "lock")
			if err != nil {
				return err
			}
			if err := be.Lock(); err != nil {
				return err
			}
			fmt.Fprintln(a.stderr(), "locked: the next refresh needs the passphrase")
			return nil
		}),
	}
}
