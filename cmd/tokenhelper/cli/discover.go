package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
	"github.com/tokenhelper/tokenhelper/helper/discovery"
	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
)

func (a *app) discoverCommand() *cobra.Command {
	var asJSON bool
	var minValid time.Duration
	cmd := &cobra.Command{
		Use:     "discover",
		GroupID: "tokens",
		Short:   "Show which token WLCG discovery finds (what xrdcp, gfal, davix would use)",
		Long: `Run WLCG Bearer Token Discovery exactly as the grid tools do — BEARER_TOKEN, then
BEARER_TOKEN_FILE, then $XDG_RUNTIME_DIR/bt_u$UID, then /tmp/bt_u$UID — and say which
token it finds, where, and for how long it is still valid. With -v every step is
listed with what it found.

Exit status: 0 when a token valid for at least --min-valid is found; 6 when none is
found or it is expired (or expires within --min-valid); 7 when discovery stops at
something that is not a token; 8 when a token file is unsafe.`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			env := a.discoveryEnv()
			res, err := a.discoverVerbose(env, a.verbose > 0 && !asJSON)
			if err != nil {
				return err
			}
			now := a.sys.Now()
			info, err := jwtinfo.Parse(res.Token)
			if err != nil {
				return err
			}
			out := discoverJSON{Source: string(res.Source), Path: res.Path, Label: res.Label(), JWT: info.IsJWT}
			for _, w := range res.Warnings {
				out.Warnings = append(out.Warnings, w.String())
			}
			var left time.Duration
			if info.IsJWT && !info.Expiry.IsZero() {
				left = info.Expiry.Sub(now)
				s := int64(left / time.Second)
				out.Expiry, out.ExpiresInSeconds, out.Issuer = info.Expiry, &s, info.Issuer
			}
			if asJSON {
				enc := json.NewEncoder(a.stdout())
				enc.SetIndent("", "  ")
				if err := enc.Encode(out); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(a.stdout(), "Found       : %s\n", res.Label())
				switch {
				case !info.IsJWT:
					fmt.Fprintf(a.stdout(), "Validity    : unknown (opaque token, %d bytes)\n", len(res.Token))
				case info.Expiry.IsZero():
					fmt.Fprintf(a.stdout(), "Validity    : unknown (no exp claim)\n")
				case left > 0:
					fmt.Fprintf(a.stdout(), "Valid for   : %s (expires %s)\n", jwtinfo.FormatTTL(left), info.Expiry.In(a.sys.Location).Format(jwtinfo.TimeLayout))
				default:
					fmt.Fprintf(a.stdout(), "Expired     : %s ago (at %s)\n", jwtinfo.FormatTTL(-left), info.Expiry.In(a.sys.Location).Format(jwtinfo.TimeLayout))
				}
				if info.Issuer != "" {
					fmt.Fprintf(a.stdout(), "Issuer      : %s\n", info.Issuer)
				}
				for _, w := range res.Warnings {
					fmt.Fprintf(a.stderr(), "warning: %s\n", w.String())
				}
			}
			if info.IsJWT && !info.Expiry.IsZero() && left <= minValid {
				if left <= 0 {
					return helper.Errorf(helper.KindNoToken, "the token from %s expired %s ago", res.Label(), jwtinfo.FormatTTL(-left)).
						WithFix("get a fresh one, e.g. tokenhelper export")
				}
				return helper.Errorf(helper.KindNoToken, "the token from %s expires in %s, within --min-valid %s", res.Label(), jwtinfo.FormatTTL(left), minValid).
					WithFix("get a fresh one, e.g. tokenhelper export")
			}
			return nil
		}),
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the result as JSON")
	cmd.Flags().DurationVar(&minValid, "min-valid", 0, "fail (exit 6) when the token expires within this duration")
	return cmd
}

type discoverJSON struct {
	Source           string    `json:"source"`
	Path             string    `json:"path,omitempty"`
	Label            string    `json:"label"`
	JWT              bool      `json:"jwt"`
	Issuer           string    `json:"issuer,omitempty"`
	Expiry           time.Time `json:"expiry,omitzero"`
	ExpiresInSeconds *int64    `json:"expires_in_seconds,omitempty"`
	Warnings         []string  `json:"warnings,omitempty"`
}

// discoverVerbose runs discovery; with verbose it lists every step on
// stderr, reading each location once (a FIFO token file is not read twice).
func (a *app) discoverVerbose(env discovery.Env, verbose bool) (*discovery.Result, error) {
	if !verbose {
		return discovery.Find(env)
	}
	locs := discovery.Locations(env)
	for _, l := range locs {
		fmt.Fprintf(a.stderr(), "  %s\n", l.String())
	}
	for _, l := range locs {
		if !l.Used {
			continue
		}
		if l.Err != nil {
			return nil, l.Err
		}
		if l.Result != nil {
			return l.Result, nil
		}
	}
	return discovery.Find(env)
}
