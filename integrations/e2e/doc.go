// Package e2e proves tokenhelper against the storage software WLCG runs:
// an XRootD 5.5 server with the SciTokens authorization plugin, serving
// root:// (authentication by the ztn protocol, over TLS) and https
// (XrdHttp), trusting the loopback test bed (integrations/testbed) as its
// token issuer, with a base path and an audience — everything on
// 127.0.0.1.
//
// The storage side follows the XRootD SciTokens plugin documentation
// (xrootd/src/XrdSciTokens/README.md) and the WLCG Common JWT Profile
// v1.0; the client side is what WLCG Bearer Token Discovery (zenodo
// 3937438) tells xrdcp, gfal2, davix, curl and rclone to do.
//
// The harness in this package (non-test files, always compiled and vetted)
// is:
//
//   - [Run]: one run's private directory under the temporary directory and
//     a record (run.json) of every process and trusted CA it created, so
//     that [Run.Close] stops each process by its pid and undoes each
//     change, and [RecoverStale] cleans up after a run that was killed;
//   - [TrustStore]: adding the test bed's CA to the Debian system trust
//     store (/usr/local/share/ca-certificates + update-ca-certificates) and
//     restoring the store exactly — scitokens-cpp, which XRootD uses to
//     fetch the issuer's keys, trusts nothing else;
//   - [StartXRootD]: the server, configured from the templates in
//     config/, run as the unprivileged user xrootd (-R xrootd), waited for
//     by probing its ports.
//
// The end-to-end tests themselves carry the build tag e2e and need root
// (the trust store, -R xrootd) and the Debian packages listed in
// deps.sh; `make e2e` installs what is missing and runs them.
package e2e
