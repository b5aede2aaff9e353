// Command crdlimits bounds the label selectors embedded in Herald's CRDs
// (metav1.LabelSelector, whose schema controller-gen copies without limits):
// at most 16 matchExpressions and 64 matchLabels, label keys of at most 317
// bytes (253 of prefix, '/', 63 of name) and values of at most 63. With the
// bounds the apiserver's CEL cost estimator accepts the rules that check
// label keys and values. It rewrites the CRD files named on the command line
// in place; hack/update-codegen.sh runs it after controller-gen.
package main

import (
	"bytes"
	"fmt"
	"os"

	"sigs.k8s.io/yaml"
)

func main() {
	for _, path := range os.Args[1:] {
		if err := patch(path); err != nil {
			fmt.Fprintln(os.Stderr, "crdlimits:", err)
			os.Exit(1)
		}
	}
}

func patch(path string) error {
	in, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	body, header := in, []byte{}
	if b, ok := bytes.CutPrefix(in, []byte("---\n")); ok {
		body, header = b, []byte("---\n")
	}
	var doc map[string]any
	if err := yaml.Unmarshal(body, &doc); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	n := walk(doc)
	if n == 0 {
		return nil
	}
	out, err := yaml.Marshal(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, append(header, out...), 0o644)
}

// walk bounds every label selector schema under v and counts them.
func walk(v any) int {
	n := 0
	switch t := v.(type) {
	case map[string]any:
		if props, ok := t["properties"].(map[string]any); ok && isSelector(props) {
			bound(props)
			n++
		}
		for _, c := range t {
			n += walk(c)
		}
	case []any:
		for _, c := range t {
			n += walk(c)
		}
	}
	return n
}

func isSelector(props map[string]any) bool {
	_, e := props["matchExpressions"].(map[string]any)
	_, l := props["matchLabels"].(map[string]any)
	return e && l && len(props) == 2
}

func bound(props map[string]any) {
	exprs := props["matchExpressions"].(map[string]any)
	exprs["maxItems"] = 16
	if items, ok := exprs["items"].(map[string]any); ok {
		if p, ok := items["properties"].(map[string]any); ok {
			if key, ok := p["key"].(map[string]any); ok {
				key["maxLength"] = 317
			}
			if values, ok := p["values"].(map[string]any); ok {
				values["maxItems"] = 256
				if vi, ok := values["items"].(map[string]any); ok {
					vi["maxLength"] = 63
				}
			}
		}
	}
	labels := props["matchLabels"].(map[string]any)
	labels["maxProperties"] = 64
	if ap, ok := labels["additionalProperties"].(map[string]any); ok {
		ap["maxLength"] = 63
	}
}
