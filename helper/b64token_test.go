package helper

import "testing"

func TestIsB64Token(t *testing.T) {
	for s, want := range map[string]bool{
		"":                 false,
		"abc":              true,
		"eyJ.eyJ.sig-_~+/": true,
		"abc==":            true,
		"=":                false,
		"ab=c":             false,
		"ab c":             false,
		"ab\n":             false,
		"ab\"":             false,
		"été":              false,
	} {
		if got := IsB64Token(s); got != want {
			t.Errorf("IsB64Token(%q) = %v, want %v", s, got, want)
		}
	}
}
