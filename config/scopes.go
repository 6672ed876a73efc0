package config

import (
	"fmt"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Scopes are parts of the object namespace: "bucket" (every key of the bucket),
// "bucket/prefix" (keys of the bucket that start with prefix) or "*" (everywhere). In YAML
// either a list of scopes or a boolean: true is ["*"], false is none.
type Scopes []string

// UnmarshalYAML accepts a boolean or a list of scope strings.
func (s *Scopes) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		var b bool
		if err := n.Decode(&b); err != nil {
			return fmt.Errorf("line %d: allow_unencrypted: want true, false or a list of bucket or bucket/prefix scopes", n.Line)
		}
		*s = boolScopes(b)
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return fmt.Errorf("line %d: allow_unencrypted: want true, false or a list of bucket or bucket/prefix scopes", n.Line)
	}
	*s = nil // an empty list is none, as the default
	if len(list) > 0 {
		*s = list
	}
	return nil
}

func boolScopes(b bool) Scopes {
	if b {
		return Scopes{"*"}
	}
	return nil
}

// parseScopesEnv reads an environment value: true/false or comma-separated scopes.
func parseScopesEnv(v string) Scopes {
	if b, err := strconv.ParseBool(v); err == nil {
		return boolScopes(b)
	}
	var out Scopes
	for _, p := range strings.Split(v, ",") {
		out = append(out, strings.TrimSpace(p))
	}
	return out
}

// validateScopes checks that every scope is "*", a bucket name or bucket/prefix.
func validateScopes(s Scopes) error {
	for _, sc := range s {
		if sc == "*" {
			continue
		}
		bucket, _, _ := strings.Cut(sc, "/")
		if bucket == "" || strings.Contains(sc, "*") {
			return fmt.Errorf("scope %q: want \"*\", a bucket name or bucket/prefix", sc)
		}
	}
	return nil
}
