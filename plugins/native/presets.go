package native

import (
	"slices"
	"strings"
)

// Preset is a known identity provider that `tokenhelper register --issuer
// NAME` can name instead of its URL.
type Preset struct {
	// Name is what --issuer accepts (and the default profile name).
	Name string
	// Issuer is the provider's issuer URL, exactly as its discovery
	// document states it.
	Issuer string
	// Scopes are the default scopes requested at registration and login.
	Scopes []string
	// Description says who runs it.
	Description string
}

// presets are the INDIGO IAM instances of the seed documents. The scopes
// are those each instance hands out to its users (seed 000 for LSST
// France, seed 003 for the WLCG and test instances), so that a first login
// asks for what a user there normally has.
var presets = []Preset{
	{
		Name:        "wlcg",
		Issuer:      "https://wlcg.cloud.cnaf.infn.it/",
		Scopes:      []string{"openid", "offline_access", "profile", "wlcg", "wlcg.groups", "storage.read:/", "storage.create:/", "storage.modify:/"},
		Description: "WLCG IAM at INFN-CNAF",
	},
	{
		Name:        "lsst-france",
		Issuer:      "https://lsst.iam.in2p3.fr/",
		Scopes:      []string{"openid", "offline_access", "profile", "email", "storage.read:/", "storage.modify:/users", "storage.modify:/groups"},
		Description: "LSST France (Rubin) IAM at CC-IN2P3",
	},
	{
		Name:        "iam-test",
		Issuer:      "https://iam-test.indigo-datacloud.eu/",
		Scopes:      []string{"openid", "offline_access", "profile", "wlcg", "wlcg.groups", "storage.read:/", "storage.create:/", "storage.modify:/"},
		Description: "INDIGO IAM test instance",
	},
}

// Presets returns the known providers, in a stable order.
func Presets() []Preset {
	out := make([]Preset, len(presets))
	for i, p := range presets {
		p.Scopes = slices.Clone(p.Scopes)
		out[i] = p
	}
	return out
}

// LookupPreset returns the preset called name (case-insensitive).
func LookupPreset(name string) (Preset, bool) {
	for _, p := range presets {
		if strings.EqualFold(p.Name, name) {
			p.Scopes = slices.Clone(p.Scopes)
			return p, true
		}
	}
	return Preset{}, false
}

// PresetForIssuer returns the preset whose issuer is issuer (ignoring a
// trailing slash), so a profile written with the URL still gets the
// preset's defaults.
func PresetForIssuer(issuer string) (Preset, bool) {
	for _, p := range presets {
		if sameIssuer(p.Issuer, issuer) {
			p.Scopes = slices.Clone(p.Scopes)
			return p, true
		}
	}
	return Preset{}, false
}

// DefaultScopes are requested when neither the profile nor a preset names
// any: an OpenID login with a refresh token and the WLCG groups.
var DefaultScopes = []string{"openid", "offline_access", "profile", "wlcg.groups"}

// sameIssuer compares issuer URLs ignoring one trailing slash (INDIGO IAM
// writes its issuer with one, its tokens' iss claims sometimes without).
func sameIssuer(a, b string) bool {
	return strings.TrimSuffix(a, "/") == strings.TrimSuffix(b, "/")
}
