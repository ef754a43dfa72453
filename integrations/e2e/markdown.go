package e2e

import "strings"

// ShellBlocks returns the bodies of the fenced code blocks of a Markdown
// page whose info string is exactly "sh", in order. Blocks tagged
// otherwise ("console", "toml", "text") are for reading, not running.
func ShellBlocks(markdown string) []string {
	var blocks []string
	var cur []string
	in := false
	for _, line := range strings.Split(markdown, "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case !in && trimmed == "```sh":
			in, cur = true, nil
		case in && trimmed == "```":
			in = false
			blocks = append(blocks, strings.Join(cur, "\n")+"\n")
		case in:
			cur = append(cur, line)
		}
	}
	return blocks
}
