package config

import (
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pelletier/go-toml/v2/unstable"
)

// The schema is the Go types themselves: the toml tags of Config and the
// types it contains say which keys exist and what they hold.
var (
	configType   = reflect.TypeFor[Config]()
	durationType = reflect.TypeFor[Duration]()
)

// tomlKeys returns the keys a struct type accepts, sorted.
func tomlKeys(t reflect.Type) []string {
	var keys []string
	for f := range t.Fields() {
		if k := tomlKey(f); k != "" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

func tomlKey(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	tag, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
	if tag == "-" {
		return ""
	}
	if tag == "" {
		return f.Name
	}
	return tag
}

func fieldByKey(t reflect.Type, key string) (reflect.Type, bool) {
	for f := range t.Fields() {
		if tomlKey(f) == key {
			return f.Type, true
		}
	}
	return nil, false
}

func deref(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// typeAt walks path through the schema. It returns the type found, or
// bad >= 0: the index of the first part the schema has no place for
// (parent is then the type that lacks it).
func typeAt(path []string) (t, parent reflect.Type, bad int) {
	t = configType
	for i, p := range path {
		t = deref(t)
		switch t.Kind() {
		case reflect.Struct:
			ft, ok := fieldByKey(t, p)
			if !ok {
				return nil, t, i
			}
			parent, t = t, ft
		case reflect.Map:
			parent, t = t, t.Elem()
		case reflect.Slice:
			if _, err := strconv.Atoi(p); err != nil {
				return nil, t, i
			}
			parent, t = t, t.Elem()
		default:
			return nil, t, i
		}
	}
	return deref(t), parent, -1
}

// displayPath writes a path the way a person reads it:
// profiles.wlcg.min_valid, routes[2].url, profiles."cms.prod".issuer.
func displayPath(path []string) string {
	var b strings.Builder
	t := reflect.Type(configType)
	for i, p := range path {
		if t != nil {
			t = deref(t)
		}
		if t != nil && t.Kind() == reflect.Slice && isIndex(p) {
			b.WriteString("[" + p + "]")
		} else {
			if i > 0 {
				b.WriteByte('.')
			}
			if isBareKey(p) {
				b.WriteString(p)
			} else {
				b.WriteString(strconv.Quote(p))
			}
		}
		if t == nil {
			continue
		}
		switch t.Kind() {
		case reflect.Struct:
			t, _ = fieldByKey(t, p)
		case reflect.Map, reflect.Slice:
			t = t.Elem()
		default:
			t = nil
		}
	}
	return b.String()
}

// tableName names the table holding path for "unknown key ... in X":
// [profiles.wlcg], [[routes]], or "at the top level".
func tableName(parent []string) string {
	if len(parent) == 0 {
		return "at the top level"
	}
	if n := len(parent); n >= 2 && isIndex(parent[n-1]) {
		if t, _, bad := typeAt(parent[:n-1]); bad < 0 && t.Kind() == reflect.Slice {
			return "in [[" + displayPath(parent[:n-1]) + "]]"
		}
	}
	return "in [" + displayPath(parent) + "]"
}

// secretKeys are keys people paste into a profile by habit. tokenhelper
// never reads secrets from its config file.
var secretKeys = map[string]string{
	"client_secret": "",
	"secret":        "",
	"refresh_token": "",
	"access_token":  "",
	"password":      "",
	"passphrase":    " (use passphrase_env, passphrase_file or passphrase_cmd)",
}

// checkEntry compares one document entry against the schema and returns
// a problem description (without file and line), or "".
func checkEntry(e entry) string {
	t, parent, bad := typeAt(e.path)
	if bad >= 0 {
		key := e.path[bad]
		where := tableName(e.path[:bad])
		if parent.Kind() != reflect.Struct {
			// A scalar or list holding a sub-key: reported by the
			// parent's kind check, which comes first in the document.
			return fmt.Sprintf("%s: expected %s, got a table", displayPath(e.path[:bad]), describeType(parent))
		}
		if hint, ok := secretKeys[strings.ToLower(key)]; ok && parent == reflect.TypeFor[Profile]() {
			return fmt.Sprintf("unknown key %q %s: tokenhelper never reads secrets from its config file; remove it%s", key, where, hint)
		}
		msg := fmt.Sprintf("unknown key %q %s", key, where)
		keys := tomlKeys(parent)
		if s := suggest(key, keys); s != "" {
			return msg + fmt.Sprintf(" (did you mean %q?)", s)
		}
		return msg + " (valid keys: " + strings.Join(keys, ", ") + ")"
	}
	name := displayPath(e.path)
	if t == durationType {
		if e.kind != unstable.String {
			v := truncate(e.data, 40)
			if e.kind != unstable.Integer && e.kind != unstable.Float {
				v = describeValue(e)
			}
			return fmt.Sprintf("%s: invalid duration %s (use a string, e.g. \"5m\", \"1h30m\")", name, v)
		}
		if _, err := time.ParseDuration(e.data); err != nil {
			return fmt.Sprintf("%s: invalid duration %s (use e.g. \"5m\", \"1h30m\")", name, quoteValue(e.data))
		}
		return ""
	}
	ok := false
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		ok = e.kind == unstable.Table
	case reflect.Slice:
		ok = e.kind == unstable.Array || e.kind == unstable.ArrayTable
	case reflect.String:
		ok = e.kind == unstable.String
	case reflect.Bool:
		ok = e.kind == unstable.Bool
	}
	if ok {
		return ""
	}
	msg := fmt.Sprintf("%s: expected %s, got %s", name, describeType(t), describeValue(e))
	switch {
	case t.Kind() == reflect.Slice && deref(t.Elem()).Kind() == reflect.Struct && e.kind == unstable.Table:
		msg += fmt.Sprintf(" (write [[%s]] for each entry)", name)
	case len(e.path) == 2 && e.path[0] == "profiles" && e.kind != unstable.Table:
		msg += " (a profile is a table: [profiles.NAME])"
	case t.Kind() == reflect.Slice && e.kind == unstable.String:
		msg += fmt.Sprintf(" (write %s = [%s])", e.path[len(e.path)-1], quoteValue(e.data))
	}
	return msg
}

func describeType(t reflect.Type) string {
	t = deref(t)
	if t == durationType {
		return "a duration string"
	}
	switch t.Kind() {
	case reflect.Struct, reflect.Map:
		return "a table"
	case reflect.Slice:
		el := deref(t.Elem())
		switch el.Kind() {
		case reflect.Struct:
			return "an array of tables"
		case reflect.String:
			return "an array of strings"
		}
		return "an array"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	}
	return t.Kind().String()
}

func describeValue(e entry) string {
	switch e.kind {
	case unstable.String:
		return "the string " + quoteValue(e.data)
	case unstable.Integer:
		return "the integer " + truncate(e.data, 40)
	case unstable.Float:
		return "the number " + truncate(e.data, 40)
	case unstable.Bool:
		return e.data
	case unstable.Array:
		return "an array"
	case unstable.ArrayTable:
		return "an array of tables"
	case unstable.Table:
		return "a table"
	case unstable.LocalDate, unstable.LocalTime, unstable.LocalDateTime, unstable.DateTime:
		return "a date/time"
	}
	return "a value"
}

// quoteValue quotes a value from the file for an error message: on one
// line, at most 64 characters.
func quoteValue(s string) string {
	return strconv.Quote(truncate(s, 64))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}

// suggest returns the known key closest to key, or "".
func suggest(key string, known []string) string {
	norm := func(s string) string { return strings.ReplaceAll(strings.ToLower(s), "-", "_") }
	nk := norm(key)
	best, bestD := "", 1<<30
	for _, k := range known {
		if norm(k) == nk {
			return k
		}
		d := levenshtein(nk, k)
		if (len(nk) >= 4 && strings.HasPrefix(k, nk)) || (len(k) >= 4 && strings.HasPrefix(nk, k)) {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	limit := 1
	if len(key) >= 5 {
		limit = 2
	}
	if bestD <= limit {
		return best
	}
	return ""
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 64 || len(rb) > 64 {
		return 1 << 20
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
