package cli

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper/discovery"
	"github.com/tokenhelper/tokenhelper/helper/httpclient"
	"github.com/tokenhelper/tokenhelper/helper/jwtinfo"
)

func (a *app) inspectCommand() *cobra.Command {
	var asJSON, verify bool
	var auds []string
	var caFile string
	cmd := &cobra.Command{
		Use:     "inspect [TOKEN|FILE|-]",
		GroupID: "tokens",
		Short:   "Decode a token: issuer, subject, scopes, groups, audience, validity",
		Long: `Decode a bearer token and show what it says: issuer, WLCG version, subject, client,
audiences, scopes, groups, issue/expiry times in your time zone and the time left.
WLCG Common JWT Profile problems (and what XRootD's scitokens-cpp would reject) are
shown as warnings. An opaque (non-JWT) token is reported as such.

The token is read from the argument (a token or a file name), from stdin with "-",
from the profile named with -p, or else found by WLCG Bearer Token Discovery.

--verify also checks the signature against the issuer's published keys (OIDC
discovery → JWKS), expiry, not-before and, with --aud, the audience; a token that
fails exits with code 7.`,
		Example: `  tokenhelper inspect
  tokenhelper inspect - < token.txt
  tokenhelper inspect "$BEARER_TOKEN_FILE" --json
  tokenhelper inspect -p wlcg --verify --aud https://se.example.org:2880`,
		Args: cobra.MaximumNArgs(1),
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			raw, where, err := a.inspectInput(cmd, args)
			if err != nil {
				return err
			}
			info, err := jwtinfo.Parse(raw)
			if err != nil {
				return err
			}
			now := a.sys.Now()
			warns := jwtinfo.Check(info, now)
			var verdict *jwtinfo.Verdict
			if verify {
				verdict, err = a.verify(cmd.Context(), raw, auds, caFile)
				if err != nil {
					return err
				}
			}
			if asJSON {
				r := jwtinfo.NewReport(info, warns, now)
				r.Verification = verdict
				b, err := r.JSON()
				if err != nil {
					return err
				}
				if _, err := a.stdout().Write(b); err != nil {
					return err
				}
			} else {
				a.log.Info("inspecting", "source", where)
				if err := jwtinfo.Render(a.stdout(), info, warns, jwtinfo.RenderOptions{Now: now, Location: a.sys.Location}); err != nil {
					return err
				}
				if verdict != nil {
					if _, err := io.WriteString(a.stdout(), "\n"); err != nil {
						return err
					}
					if err := jwtinfo.RenderVerdict(a.stdout(), verdict); err != nil {
						return err
					}
				}
			}
			if verdict != nil {
				return verdict.Err()
			}
			return nil
		}),
	}
	f := cmd.Flags()
	f.BoolVar(&asJSON, "json", false, "print all claims, header, validity and warnings as JSON")
	f.BoolVar(&verify, "verify", false, "verify signature (issuer discovery → JWKS), exp, nbf and --aud")
	f.StringArrayVar(&auds, "aud", nil, "with --verify: audience the token must be for (repeatable)")
	f.StringVar(&caFile, "ca-file", "", "with --verify: extra PEM CA bundle to trust for the issuer (default: the profile's ca_file)")
	return cmd
}

// inspectInput finds the token to inspect and says where it came from.
func (a *app) inspectInput(cmd *cobra.Command, args []string) (raw, where string, err error) {
	if len(args) == 1 {
		in, err := jwtinfo.ReadArg(args[0], a.sys.Stdin)
		if err != nil {
			return "", "", err
		}
		for _, n := range in.Notes {
			fmt.Fprintln(a.stderr(), "note: "+n)
		}
		return in.Raw, in.Source, nil
	}
	if a.profileFlag != "" {
		tok, _, err := a.token(cmd.Context(), tokenOptions{minValid: 0, minSet: true})
		if err != nil {
			return "", "", err
		}
		return tok.AccessToken, tok.Source, nil
	}
	res, err := discovery.Find(a.discoveryEnv())
	if err != nil {
		return "", "", err
	}
	return res.Token, res.Label(), nil
}

func (a *app) verify(ctx context.Context, raw string, auds []string, caFile string) (*jwtinfo.Verdict, error) {
	if caFile == "" {
		if p, err := a.profile(); err == nil && p != nil {
			caFile = p.CAFile
		}
	}
	client, err := httpclient.New(httpclient.Options{CAFile: caFile})
	if err != nil {
		return nil, err
	}
	return jwtinfo.Verify(ctx, raw, jwtinfo.VerifyOptions{HTTPClient: client, Audiences: auds, Now: a.sys.Now, Leeway: 30 * time.Second})
}
