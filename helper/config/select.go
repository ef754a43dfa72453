package config

import (
	"fmt"
	"strings"

	"github.com/tokenhelper/tokenhelper/helper"
)

// Select picks the profile to use: flagName (-p) first, then envName
// (TOKENHELPER_PROFILE), then default_profile, then the only profile when
// exactly one exists. With no name and several (or no) profiles it returns
// (nil, nil): callers fall back to WLCG discovery. A name that no profile
// has is a KindNoProfile error listing the profiles and the config file.
func (c *Config) Select(flagName, envName string) (*Profile, error) {
	name, from := flagName, "-p"
	if name == "" {
		name, from = envName, EnvProfile
	}
	if name == "" && c != nil {
		name, from = c.DefaultProfile, "default_profile"
	}
	if name == "" {
		if c != nil && len(c.Profiles) == 1 {
			for n, p := range c.Profiles {
				return c.profile(n, p), nil
			}
		}
		return nil, nil
	}
	if c != nil {
		if p, ok := c.Profiles[name]; ok {
			return c.profile(name, p), nil
		}
	}
	names := c.ProfileNames()
	msg := fmt.Sprintf("unknown profile %s (from %s): %s", quoteValue(name), from, c.where(names))
	e := helper.Errorf(helper.KindNoProfile, "%s", msg)
	if len(names) > 0 {
		return nil, e.WithFix("use one of: %s; or add [profiles.%s] to the config file", strings.Join(names, ", "), tableKey(name))
	}
	file := "the config file"
	if c != nil && c.Path != "" {
		file = c.Path
	} else if c != nil && c.searched != "" {
		file = c.searched
	}
	return nil, e.WithFix("add [profiles.%s] to %s (see docs/config.md)", tableKey(name), file)
}

func (c *Config) profile(n string, p *Profile) *Profile {
	if p == nil {
		p = &Profile{}
		c.Profiles[n] = p
	}
	if p.Name == "" {
		p.Name = n
	}
	return p
}

// where describes the configuration for an error message.
func (c *Config) where(names []string) string {
	switch {
	case c != nil && c.Path != "" && len(names) > 0:
		return fmt.Sprintf("%s defines %s", c.Path, strings.Join(names, ", "))
	case c != nil && c.Path != "":
		return fmt.Sprintf("%s defines no profiles", c.Path)
	case c != nil && c.searched != "":
		return fmt.Sprintf("there is no config file (looked for %s)", c.searched)
	case len(names) > 0:
		return "the configuration defines " + strings.Join(names, ", ")
	}
	return "there is no config file"
}

// tableKey writes a profile name as a TOML key.
func tableKey(name string) string {
	if isBareKey(name) {
		return name
	}
	return quoteValue(name)
}
