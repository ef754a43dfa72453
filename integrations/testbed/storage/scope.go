package storage

import (
	"path"
	"strings"
)

// perm is a set of WLCG storage authorizations.
type perm uint8

const (
	permRead   perm = 1 << iota // storage.read
	permCreate                  // storage.create
	permModify                  // storage.modify
	permStage                   // storage.stage
)

// scopeName returns the WLCG scope name of a single authorization.
func (p perm) scopeName() string {
	switch p {
	case permRead:
		return "storage.read"
	case permCreate:
		return "storage.create"
	case permModify:
		return "storage.modify"
	case permStage:
		return "storage.stage"
	}
	return "storage.unknown"
}

// grant is one storage scope of a token: the authorizations it gives and the
// namespace path (BasePath joined with the scope path, cleaned) they cover.
type grant struct {
	perm perm
	path string
}

// parseScopes turns a space-separated scope claim into grants below base
// (an absolute, cleaned path). Scopes that are not storage scopes, or whose
// path is missing or relative, give nothing, as in scitokens-cpp: the WLCG
// profile requires a path. Implications follow the profile: modify implies
// create, stage implies read. The scope path is cleaned as an absolute path
// before it is joined with base, so ".." can never climb above base.
func parseScopes(claim, base string) []grant {
	var out []grant
	for _, s := range strings.Fields(claim) {
		name, p, ok := strings.Cut(s, ":")
		if !ok || !strings.HasPrefix(p, "/") {
			continue
		}
		var g perm
		switch name {
		case "storage.read":
			g = permRead
		case "storage.create":
			g = permCreate
		case "storage.modify":
			g = permModify | permCreate
		case "storage.stage":
			g = permStage | permRead
		default:
			continue
		}
		out = append(out, grant{perm: g, path: path.Join(base, path.Clean(p))})
	}
	return out
}

// allowed reports whether any grant gives need on the namespace path p
// (absolute and cleaned).
func allowed(grants []grant, need perm, p string) bool {
	for _, g := range grants {
		if g.perm&need != 0 && covers(g.path, p) {
			return true
		}
	}
	return false
}

// covers reports whether scope path s covers p: s itself and everything
// below it, on path-segment boundaries ("/data" covers "/data/x" but not
// "/database"). Both must be absolute and cleaned.
func covers(s, p string) bool {
	if s == "/" {
		return true
	}
	return p == s || strings.HasPrefix(p, s) && p[len(s)] == '/'
}

// cleanPath returns the absolute, cleaned form of a resource path, the way
// the file system below resolves it: "/a/../b" and "a//b/" become "/b" and
// "/a/b".
func cleanPath(p string) string {
	return path.Clean("/" + p)
}

// relativeTo returns p relative to base as a scope path ("/" for base
// itself), and false when p lies outside base.
func relativeTo(base, p string) (string, bool) {
	if !covers(base, p) {
		return "", false
	}
	if base == "/" {
		return p, true
	}
	rel := p[len(base):]
	if rel == "" {
		rel = "/"
	}
	return rel, true
}
