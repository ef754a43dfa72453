package storage

import (
	"encoding/json"
	"testing"
)

// TestParseJWKS: usable keys are kept, everything doubtful is skipped.
func TestParseJWKS(t *testing.T) {
	good := map[string]any{"keys": []any{rsaKey1().jwk(), ecKey1().jwk(),
		map[string]any{"kty": "oct", "kid": "h", "k": "c2VjcmV0"}}}
	b, _ := json.Marshal(good)
	keys, err := parseJWKS(b)
	if err != nil || len(keys) != 2 || keys["rsa1"].key == nil || keys["ec1"].key == nil {
		t.Fatalf("good set: %v %v", keys, err)
	}
	tests := []struct {
		name string
		mut  func(m map[string]any)
	}{
		{"enc use", func(m map[string]any) { m["use"] = "enc" }},
		{"no kid", func(m map[string]any) { delete(m, "kid") }},
		{"other alg", func(m map[string]any) { m["alg"] = "PS256" }},
		{"bad n", func(m map[string]any) { m["n"] = "!!" }},
		{"short n", func(m map[string]any) { m["n"] = "AQAB" }},
		{"even e", func(m map[string]any) { m["e"] = "AQAA" }},
		{"huge e", func(m map[string]any) { m["e"] = "AQAAAAAB" }},
		{"number n", func(m map[string]any) { m["n"] = 5 }},
	}
	for _, tc := range tests {
		m := rsaKey1().jwk()
		tc.mut(m)
		b, _ := json.Marshal(map[string]any{"keys": []any{m}})
		if keys, err := parseJWKS(b); err == nil {
			t.Errorf("%s: accepted %v", tc.name, keys)
		}
	}
	ec := ecKey1().jwk()
	y := []byte(ec["y"].(string))
	y[len(y)-2] ^= 1 // off the curve
	ec["y"] = string(y)
	b, _ = json.Marshal(map[string]any{"keys": []any{ec}})
	if _, err := parseJWKS(b); err == nil {
		t.Error("EC point off the curve accepted")
	}
	if _, err := parseJWKS([]byte(`{"keys":"x"}`)); err == nil {
		t.Error("non-set accepted")
	}
}
