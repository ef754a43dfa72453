package config

import (
	"sort"
	"strconv"
	"strings"

	"github.com/pelletier/go-toml/v2/unstable"
)

// entry is one table or value of the document, with the line it appears
// on. Paths are resolved: array elements (of [[array tables]] and of
// inline arrays) appear as their decimal index.
type entry struct {
	path []string
	line int
	kind unstable.Kind // Table for tables (also [[x]] elements), ArrayTable for the [[x]] array itself
	data string        // scalar value (strings unquoted); "" for containers
}

// index records where every key of a syntactically valid document is, so
// that errors found after decoding can still name a line.
type index struct {
	entries []entry
	byPath  map[string]int // joined path → entries index (first occurrence)
}

func pathKey(path []string) string { return strings.Join(path, "\x00") }

// line returns the line of path, or of its nearest ancestor present in
// the document; 0 when none is.
func (ix *index) line(path ...string) int {
	if ix == nil {
		return 0
	}
	for n := len(path); n > 0; n-- {
		if i, ok := ix.byPath[pathKey(path[:n])]; ok {
			return ix.entries[i].line
		}
	}
	return 0
}

// buildIndex walks a document that go-toml already accepted.
func buildIndex(data []byte) (*index, error) {
	ix := &index{byPath: map[string]int{}}
	lines := lineStarts(data)
	lineAt := func(off uint32) int {
		// number of line starts <= off
		return sort.Search(len(lines), func(i int) bool { return lines[i] > int(off) })
	}
	arrayLen := map[string]int{}
	add := func(path []string, line int, kind unstable.Kind, data string) {
		k := pathKey(path)
		if _, ok := ix.byPath[k]; ok {
			return
		}
		ix.byPath[k] = len(ix.entries)
		ix.entries = append(ix.entries, entry{path: path, line: line, kind: kind, data: data})
	}
	keyParts := func(n *unstable.Node) ([]string, int) {
		var parts []string
		line := 0
		it := n.Key()
		for it.Next() {
			k := it.Node()
			if line == 0 {
				line = lineAt(k.Raw.Offset)
			}
			parts = append(parts, string(k.Data))
		}
		return parts, line
	}
	// resolve inserts the current index of every array table on the way.
	resolve := func(keys []string) []string {
		var out []string
		for _, k := range keys {
			out = append(out, k)
			if n := arrayLen[pathKey(out)]; n > 0 {
				out = append(out, strconv.Itoa(n-1))
			}
		}
		return out
	}
	implicit := func(full []string, from, line int) {
		for i := from; i < len(full); i++ {
			add(clonePath(full[:i]), line, unstable.Table, "")
		}
	}

	var addValue func(path []string, v *unstable.Node, line int)
	addValue = func(path []string, v *unstable.Node, line int) {
		if v.Raw.Length > 0 {
			line = lineAt(v.Raw.Offset)
		} else if c := v.Child(); c != nil && c.Raw.Length > 0 {
			line = lineAt(c.Raw.Offset)
		}
		switch v.Kind {
		case unstable.Array:
			add(path, line, unstable.Array, "")
			it := v.Children()
			for i := 0; it.Next(); i++ {
				addValue(appendPath(path, strconv.Itoa(i)), it.Node(), line)
			}
		case unstable.InlineTable:
			add(path, line, unstable.Table, "")
			it := v.Children()
			for it.Next() {
				kv := it.Node()
				if kv.Kind != unstable.KeyValue {
					continue
				}
				keys, kline := keyParts(kv)
				full := appendPath(path, keys...)
				implicit(full, len(path)+1, kline)
				addValue(full, kv.Value(), kline)
			}
		default:
			add(path, line, v.Kind, string(v.Data))
		}
	}

	var table []string
	p := &unstable.Parser{}
	p.Reset(data)
	for p.NextExpression() {
		e := p.Expression()
		switch e.Kind {
		case unstable.KeyValue:
			keys, line := keyParts(e)
			full := appendPath(table, keys...)
			implicit(full, len(table)+1, line)
			addValue(full, e.Value(), line)
		case unstable.Table:
			keys, line := keyParts(e)
			table = resolve(keys)
			implicit(table, 1, line)
			add(clonePath(table), line, unstable.Table, "")
		case unstable.ArrayTable:
			keys, line := keyParts(e)
			container := appendPath(resolve(keys[:len(keys)-1]), keys[len(keys)-1])
			implicit(container, 1, line)
			add(clonePath(container), line, unstable.ArrayTable, "")
			ck := pathKey(container)
			n := arrayLen[ck]
			arrayLen[ck] = n + 1
			table = appendPath(container, strconv.Itoa(n))
			add(clonePath(table), line, unstable.Table, "")
		}
	}
	return ix, p.Error()
}

func lineStarts(data []byte) []int {
	starts := []int{0}
	for i, c := range data {
		if c == '\n' {
			starts = append(starts, i+1)
		}
	}
	return starts
}

func clonePath(p []string) []string { return append([]string(nil), p...) }

func appendPath(p []string, more ...string) []string {
	out := make([]string, 0, len(p)+len(more))
	return append(append(out, p...), more...)
}

func isIndex(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func isBareKey(s string) bool {
	if s == "" {
		return false
	}
	for _, c := range s {
		if !isBareKeyChar(c) {
			return false
		}
	}
	return true
}

// isBareKeyChar: TOML bare keys are A-Za-z0-9_-.
func isBareKeyChar(c rune) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
}
