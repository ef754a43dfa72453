package config

import (
	"os"
	"reflect"
	"strings"
	"testing"
)

// The reference in docs/config.md stays in step with the code: its example
// is Example, every TOML block in it parses, and every key is documented.
func TestDocs(t *testing.T) {
	data, err := os.ReadFile("../../docs/config.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	var blocks []string
	for rest := doc; ; {
		_, after, ok := strings.Cut(rest, "```toml\n")
		if !ok {
			break
		}
		block, tail, _ := strings.Cut(after, "```\n")
		blocks = append(blocks, block)
		rest = tail
	}
	if len(blocks) < 2 {
		t.Fatalf("found %d toml blocks", len(blocks))
	}
	if blocks[0] != Example {
		t.Error("the example in docs/config.md differs from config.Example")
	}
	for i, b := range blocks {
		if _, err := Parse("docs-block", []byte(b)); err != nil {
			t.Errorf("toml block %d: %v", i, err)
		}
	}
	for _, typ := range []reflect.Type{configType, reflect.TypeFor[Profile](), reflect.TypeFor[Route](),
		reflect.TypeFor[PluginPin](), reflect.TypeFor[RenewOutput]()} {
		for _, k := range tomlKeys(typ) {
			if !strings.Contains(doc, "| `"+k+"` |") && !strings.Contains(doc, "`["+k+".NAME]`") && !strings.Contains(doc, "`[["+k+"]]`") {
				t.Errorf("key %s.%s is not in the reference tables of docs/config.md", typ.Name(), k)
			}
		}
	}
}
