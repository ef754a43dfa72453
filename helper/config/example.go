package config

// Example is a complete, valid configuration with comments; `tokenhelper
// config example` (or the docs) can print it as a starting point. The
// package tests parse it.
const Example = `# tokenhelper configuration: ~/.config/tokenhelper/config.toml
# (or $XDG_CONFIG_HOME/tokenhelper/config.toml, or the file named by
# $TOKENHELPER_CONFIG / --config). Full reference: docs/config.md.
#
# Secrets never go in this file: client secrets and refresh tokens are
# kept encrypted in ~/.local/state/tokenhelper by "tokenhelper login".

# The profile used when neither -p nor $TOKENHELPER_PROFILE names one.
default_profile = "wlcg"

# --- Profiles: named ways of getting a token --------------------------

# tokenhelper talks to the WLCG IAM itself (device flow on first login,
# then refresh tokens). Run "tokenhelper login -p wlcg" once.
[profiles.wlcg]
backend   = "native"                       # the default when neither account nor token_file is set
issuer    = "https://wlcg.cloud.cnaf.infn.it/"
scopes    = ["openid", "offline_access", "wlcg.groups", "storage.read:/"]
audiences = ["https://wlcg.cern.ch/jwt/v1/any"]
min_valid = "5m"                           # never hand out a token with less left
timeout   = "30s"                          # bound for one call to the IAM
unlock_for = "8h"                          # remember the passphrase this long

# Tokens from a running oidc-agent (account created with oidc-gen cms).
[profiles.cms]
account   = "cms"                          # backend "oidc-agent" is inferred from account
scopes    = ["openid", "profile", "wlcg.groups"]
audiences = ["https://wlcg.cern.ch/jwt/v1/any"]

# A token file kept fresh by something else (a robot, HTCondor, a cron job).
[profiles.robot]
token_file = "/etc/grid-security/tokens/robot.token"   # backend "file" is inferred

# --- Routes: which profile serves which URL ----------------------------
# The longest matching path wins; a missing port means the scheme's default
# (https/davs 443, http/dav 80, root/roots 1094); davs is https, dav is http.

# A dCache WebDAV door: read/write tokens limited to the experiment's area.
[[routes]]
url       = "davs://dcache.example.org:2880/pnfs/example.org/data/wlcg"
profile   = "wlcg"
scopes    = ["storage.read:/", "storage.modify:/"]
audiences = ["https://dcache.example.org:2880"]

# Everything else on the same door: read only.
[[routes]]
url     = "davs://dcache.example.org:2880"
profile = "wlcg"
scopes  = ["storage.read:/"]

# A git host that accepts IAM tokens (tokenhelper is the credential helper).
[[routes]]
url     = "https://gitlab.example.org"
profile = "cms"

# --- Outputs "tokenhelper renew" keeps fresh ---------------------------
[[renew]]
profile = "wlcg"                 # file unset: the WLCG discovery location ($XDG_RUNTIME_DIR/bt_u$UID)
min_valid = "20m"

# --- External plugins (tokenhelper-plugin-NAME) pinned by checksum ------
# [plugins.vault]
# sha256 = "<output of sha256sum /usr/local/libexec/tokenhelper-plugin-vault>"
# path   = "/usr/local/libexec/tokenhelper-plugin-vault"
`
