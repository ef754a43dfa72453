package cli

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/tokenhelper/tokenhelper/helper"
)

func (a *app) tokenCommand() *cobra.Command {
	var o tokenOptions
	var asJSON bool
	cmd := &cobra.Command{
		Use:     "token",
		GroupID: "tokens",
		Short:   "Print an access token (exactly the token and a newline)",
		Long: `Print an access token of the selected profile on stdout: exactly the token and one
newline, nothing else, so $(tokenhelper token) and rclone's bearer_token_command work.

The token comes from the profile's backend through the token cache. It is never one
that expires within --min-valid; when no fresh token can be had without a person,
token fails with exit code 4 and says which command to run.

With no profile configured or named, token follows WLCG Bearer Token Discovery
(BEARER_TOKEN, BEARER_TOKEN_FILE, $XDG_RUNTIME_DIR/bt_u$UID, /tmp/bt_u$UID).`,
		Example: `  tokenhelper token
  tokenhelper token -p wlcg -s storage.read:/data --aud https://se.example.org:2880
  curl -H @<(tokenhelper header) https://se.example.org:2880/data/file`,
		Args: cobra.NoArgs,
		RunE: runE(func(cmd *cobra.Command, args []string) error {
			o.resolve(cmd)
			tok, _, err := a.token(cmd.Context(), o)
			if err != nil {
				return err
			}
			if asJSON {
				return writeTokenJSON(a.stdout(), tok, a.sys.Now())
			}
			_, err = fmt.Fprintln(a.stdout(), tok.AccessToken)
			return err
		}),
	}
	o.register(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print a JSON object: token, expiry, issuer, scopes, audiences, profile, source")
	return cmd
}

// tokenJSON is the --json form of a token (stable field names).
type tokenJSON struct {
	Token            string    `json:"token"`
	Expiry           time.Time `json:"expiry,omitzero"`
	ExpiresInSeconds *int64    `json:"expires_in_seconds,omitempty"`
	Issuer           string    `json:"issuer,omitempty"`
	Scopes           []string  `json:"scopes"`
	Audiences        []string  `json:"audiences"`
	Profile          string    `json:"profile"`
	Source           string    `json:"source"`
}

func writeTokenJSON(w interface{ Write([]byte) (int, error) }, tok *helper.Token, now time.Time) error {
	out := tokenJSON{
		Token: tok.AccessToken, Expiry: tok.Expiry, Issuer: tok.Issuer,
		Scopes: nonNil(tok.Scopes), Audiences: nonNil(tok.Audiences),
		Profile: tok.Profile, Source: tok.Source,
	}
	if !tok.Expiry.IsZero() {
		s := int64(tok.Expiry.Sub(now) / time.Second)
		out.ExpiresInSeconds = &s
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(out)
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
