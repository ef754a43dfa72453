package testbed

import (
	"path"
	"slices"
	"strings"
)

// basicScopes are granted to every user who asks (subject to the client's
// scope list), like IAM's default scope policy.
var basicScopes = map[string]bool{
	"openid":                       true,
	"profile":                      true,
	"email":                        true,
	"address":                      true,
	"phone":                        true,
	"offline_access":               true,
	"wlcg":                         true,
	"wlcg.groups":                  true,
	"eduperson_scoped_affiliation": true,
	"eduperson_entitlement":        true,
}

// supportedScopes is what discovery advertises.
var supportedScopes = []string{
	"openid", "profile", "email", "offline_access", "wlcg", "wlcg.groups",
	"storage.read:/", "storage.create:/", "storage.modify:/", "storage.stage:/",
	"compute.read", "compute.create", "compute.modify", "compute.cancel",
}

// splitScope splits "storage.read:/a/b" into ("storage.read", "/a/b",
// true). Scopes without a path return ok false.
func splitScope(s string) (authz, p string, ok bool) {
	i := strings.IndexByte(s, ':')
	if i <= 0 || i == len(s)-1 || s[i+1] != '/' {
		return "", "", false
	}
	return s[:i], s[i+1:], true
}

// scopeCovered reports whether scope s is covered by one of allowed:
// equal, or the same authorization on a path at or below an allowed path.
func scopeCovered(s string, allowed []string) bool {
	if slices.Contains(allowed, s) {
		return true
	}
	authz, p, ok := splitScope(s)
	if !ok {
		return false
	}
	p = path.Clean(p)
	for _, a := range allowed {
		aAuthz, aPath, ok := splitScope(a)
		if !ok || aAuthz != authz {
			continue
		}
		if pathWithin(p, path.Clean(aPath)) {
			return true
		}
	}
	return false
}

// pathWithin reports whether p equals base or lies below it.
func pathWithin(p, base string) bool {
	if base == "/" || p == base {
		return true
	}
	return strings.HasPrefix(p, base+"/")
}

// groupScope returns the group of a "wlcg.groups:/vo/sub" scope.
func groupScope(s string) (string, bool) {
	g, ok := strings.CutPrefix(s, "wlcg.groups:")
	return g, ok && strings.HasPrefix(g, "/")
}

// userMay reports whether user u may be granted scope s.
func userMay(u *User, s string) bool {
	if basicScopes[s] {
		return true
	}
	if g, ok := groupScope(s); ok {
		return slices.Contains(u.Groups, g)
	}
	return scopeCovered(s, u.Scopes)
}

// clientMay reports whether a client with the scope list allowed may ask
// for scope s. An empty list allows everything.
func clientMay(allowed []string, s string) bool {
	if len(allowed) == 0 {
		return true
	}
	if _, ok := groupScope(s); ok && slices.Contains(allowed, "wlcg.groups") {
		return true
	}
	return scopeCovered(s, allowed)
}

// filterScopes keeps the requested scopes that the user (nil for a client
// acting on its own behalf) and the client may have, in request order,
// without duplicates. IAM drops the others silently; so does the test bed.
func filterScopes(requested []string, u *User, clientScopes []string) []string {
	var out []string
	for _, s := range requested {
		if s == "" || slices.Contains(out, s) {
			continue
		}
		if u != nil && !userMay(u, s) {
			continue
		}
		if !clientMay(clientScopes, s) {
			continue
		}
		out = append(out, s)
	}
	return out
}

// subsetOf reports whether every scope in req is one of granted, or a
// narrower path of one of them (down-scoping "storage.read:/" to
// "storage.read:/home" is allowed, widening is not).
func subsetOf(req, granted []string) bool {
	for _, s := range req {
		if scopeCovered(s, granted) {
			continue
		}
		if _, ok := groupScope(s); ok && slices.Contains(granted, "wlcg.groups") {
			continue
		}
		return false
	}
	return true
}

// groupsFor returns the wlcg.groups claim for the granted scopes: groups
// requested explicitly ("wlcg.groups:/g") first in request order, then,
// when "wlcg.groups" is granted, the user's other groups in their order.
// Nil when no group scope is granted.
func groupsFor(scopes, userGroups []string) []string {
	var out []string
	all := false
	for _, s := range scopes {
		if s == "wlcg.groups" {
			all = true
			continue
		}
		if g, ok := groupScope(s); ok && slices.Contains(userGroups, g) && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	if all {
		for _, g := range userGroups {
			if !slices.Contains(out, g) {
				out = append(out, g)
			}
		}
	}
	return out
}

// splitList splits space-separated values and drops empty fields: scope
// and audience parameters may arrive as one space-separated value or as
// repeated parameters.
func splitList(values ...string) []string {
	var out []string
	for _, v := range values {
		for _, f := range strings.Fields(v) {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	return out
}
