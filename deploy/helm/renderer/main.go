// Command renderer renders a Helm chart the way `helm template` does, for the tests of
// deploy/helm/gatehouse on machines that have no helm binary (and no network to fetch one).
//
// It is our own small implementation of Helm's documented template environment, not Helm's code:
// Go text/template with the Sprig v3 function library (minus env/expandenv, as Helm), plus
// include, tpl, required, fail, toYaml, fromYaml, toJson, fromJson, lookup (always empty, as in
// `helm template`), the objects .Values, .Release, .Chart, .Capabilities, .Template and .Files
// (Get), values merged as Helm merges them (values.yaml, then each -f file, maps merged key by
// key, null deletes a key), numbers read as float64 as Helm reads them, and templates whose name
// starts with "_" defining helpers only. JSON Schema validation of values (values.schema.json) is
// done by the tests, not here.
//
// Usage: renderer -chart DIR [-f values.yaml]... [-name RELEASE] [-namespace NS] [-kube-version 1.30] [-notes]
// Output: every rendered manifest as a YAML stream, each preceded by "# Source: <chart>/templates/<file>".
package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"text/template"

	"github.com/Masterminds/sprig"
	"gopkg.in/yaml.v3"
)

type valueFiles []string

func (v *valueFiles) String() string     { return strings.Join(*v, ",") }
func (v *valueFiles) Set(s string) error { *v = append(*v, s); return nil }

func main() {
	chartDir := flag.String("chart", "", "chart directory")
	name := flag.String("name", "release-name", "release name")
	namespace := flag.String("namespace", "default", "release namespace")
	kubeVersion := flag.String("kube-version", "1.30.0", "Kubernetes version for .Capabilities")
	notes := flag.Bool("notes", false, "render templates/NOTES.txt instead of the manifests")
	var files valueFiles
	flag.Var(&files, "f", "values file (repeatable; later files win)")
	flag.Parse()
	if *chartDir == "" {
		fmt.Fprintln(os.Stderr, "renderer: -chart is required")
		os.Exit(2)
	}
	out, err := render(*chartDir, files, *name, *namespace, *kubeVersion, *notes)
	if err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
	os.Stdout.WriteString(out)
}

// readYAML reads a YAML mapping the way Helm does (sigs.k8s.io/yaml): through JSON, so every
// number is a float64 and every map a map[string]interface{}.
func readYAML(data []byte) (map[string]interface{}, error) {
	var raw interface{}
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, err
	}
	if raw == nil {
		return map[string]interface{}{}, nil
	}
	asJSON, err := json.Marshal(raw)
	if err != nil {
		return nil, err
	}
	out := map[string]interface{}{}
	if err := json.Unmarshal(asJSON, &out); err != nil {
		return nil, fmt.Errorf("not a mapping: %w", err)
	}
	return out, nil
}

// mergeValues lays override onto base: maps merge key by key, anything else replaces, and a null
// removes the key (Helm's coalescing for user-supplied values).
func mergeValues(base, override map[string]interface{}) map[string]interface{} {
	out := map[string]interface{}{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range override {
		if v == nil {
			delete(out, k)
			continue
		}
		if bm, ok := out[k].(map[string]interface{}); ok {
			if om, ok := v.(map[string]interface{}); ok {
				out[k] = mergeValues(bm, om)
				continue
			}
		}
		out[k] = v
	}
	return out
}

// toYAML is Helm's toYaml: JSON first (so struct tags and float64 integers come out as Helm's do),
// then YAML with sorted keys and two-space indentation, without the trailing newline.
func toYAML(v interface{}) string {
	asJSON, err := json.Marshal(v)
	if err != nil {
		return ""
	}
	var node interface{}
	if err := yaml.Unmarshal(asJSON, &node); err != nil {
		return ""
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(node); err != nil {
		return ""
	}
	return strings.TrimSuffix(buf.String(), "\n")
}

// Files is .Files: the chart's non-template files, read by path relative to the chart.
type Files map[string][]byte

func (f Files) Get(name string) string { return string(f[name]) }

func render(chartDir string, valueFiles []string, releaseName, namespace, kubeVersion string, notes bool) (string, error) {
	chartYAML, err := os.ReadFile(filepath.Join(chartDir, "Chart.yaml"))
	if err != nil {
		return "", err
	}
	chartMeta, err := readYAML(chartYAML)
	if err != nil {
		return "", fmt.Errorf("Chart.yaml: %w", err)
	}
	// .Chart exposes Chart.yaml's fields capitalised, as Helm's chart.Metadata does
	chart := map[string]interface{}{}
	for k, v := range chartMeta {
		chart[strings.ToUpper(k[:1])+k[1:]] = v
	}
	chartName, _ := chart["Name"].(string)

	values := map[string]interface{}{}
	for _, file := range append([]string{filepath.Join(chartDir, "values.yaml")}, valueFiles...) {
		data, err := os.ReadFile(file)
		if err != nil {
			return "", err
		}
		v, err := readYAML(data)
		if err != nil {
			return "", fmt.Errorf("%s: %w", file, err)
		}
		values = mergeValues(values, v)
	}

	files := Files{}
	var templateNames []string
	err = filepath.Walk(chartDir, func(path string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(chartDir, path)
		rel = filepath.ToSlash(rel)
		if strings.HasPrefix(rel, "templates/") {
			templateNames = append(templateNames, rel)
		} else {
			data, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			files[rel] = data
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	sort.Strings(templateNames)

	major, minor := "1", "30"
	if parts := strings.SplitN(strings.TrimPrefix(kubeVersion, "v"), ".", 3); len(parts) >= 2 {
		major, minor = parts[0], parts[1]
	}
	capabilities := map[string]interface{}{
		"KubeVersion": map[string]interface{}{"Version": "v" + strings.TrimPrefix(kubeVersion, "v"), "Major": major, "Minor": minor, "GitVersion": "v" + strings.TrimPrefix(kubeVersion, "v")},
		"APIVersions": apiVersions{},
		"HelmVersion": map[string]interface{}{"Version": "v3-compatible (gatehouse renderer)"},
	}
	release := map[string]interface{}{"Name": releaseName, "Namespace": namespace, "Service": "Helm", "IsInstall": true, "IsUpgrade": false, "Revision": 1}

	root := template.New("gotpl")
	funcs := sprig.TxtFuncMap()
	delete(funcs, "env")
	delete(funcs, "expandenv")
	funcs["toYaml"] = toYAML
	funcs["fromYaml"] = func(s string) map[string]interface{} {
		m, err := readYAML([]byte(s))
		if err != nil {
			return map[string]interface{}{"Error": err.Error()}
		}
		return m
	}
	funcs["toJson"] = func(v interface{}) string {
		b, err := json.Marshal(v)
		if err != nil {
			return ""
		}
		return string(b)
	}
	funcs["fromJson"] = func(s string) map[string]interface{} {
		m := map[string]interface{}{}
		if err := json.Unmarshal([]byte(s), &m); err != nil {
			return map[string]interface{}{"Error": err.Error()}
		}
		return m
	}
	funcs["required"] = func(msg string, v interface{}) (interface{}, error) {
		if v == nil {
			return nil, errors.New(msg)
		}
		if s, ok := v.(string); ok && s == "" {
			return nil, errors.New(msg)
		}
		return v, nil
	}
	funcs["fail"] = func(msg string) (string, error) { return "", errors.New(msg) }
	funcs["lookup"] = func(string, string, string, string) (map[string]interface{}, error) {
		return map[string]interface{}{}, nil
	}
	// include and tpl need the template set itself; bound below, before any execution
	funcs["include"] = func(string, interface{}) (string, error) { return "", nil }
	funcs["tpl"] = func(string, interface{}) (string, error) { return "", nil }
	root.Funcs(funcs).Option("missingkey=zero")

	includeDepth := 0
	funcs["include"] = func(name string, data interface{}) (string, error) {
		includeDepth++
		defer func() { includeDepth-- }()
		if includeDepth > 1000 {
			return "", fmt.Errorf("rendering template has a nested reference name: %s", name)
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, name, data); err != nil {
			return "", err
		}
		return buf.String(), nil
	}
	funcs["tpl"] = func(text string, data interface{}) (string, error) {
		clone, err := root.Clone()
		if err != nil {
			return "", err
		}
		t, err := clone.New("tpl").Parse(text)
		if err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		var buf bytes.Buffer
		if err := t.Execute(&buf, data); err != nil {
			return "", fmt.Errorf("tpl: %w", err)
		}
		return strings.ReplaceAll(buf.String(), "<no value>", ""), nil
	}
	root.Funcs(funcs)

	for _, name := range templateNames {
		data, err := os.ReadFile(filepath.Join(chartDir, name))
		if err != nil {
			return "", err
		}
		if _, err := root.New(chartName + "/" + name).Parse(string(data)); err != nil {
			return "", err
		}
	}

	var out strings.Builder
	for _, name := range templateNames {
		base := filepath.Base(name)
		isNotes := base == "NOTES.txt"
		if strings.HasPrefix(base, "_") || isNotes != notes || (!isNotes && !strings.HasSuffix(base, ".yaml") && !strings.HasSuffix(base, ".tpl")) {
			continue
		}
		full := chartName + "/" + name
		dot := map[string]interface{}{
			"Values":       values,
			"Release":      release,
			"Chart":        chart,
			"Capabilities": capabilities,
			"Files":        files,
			"Template":     map[string]interface{}{"Name": full, "BasePath": chartName + "/templates"},
		}
		var buf bytes.Buffer
		if err := root.ExecuteTemplate(&buf, full, dot); err != nil {
			return "", err
		}
		text := strings.ReplaceAll(buf.String(), "<no value>", "")
		if notes {
			out.WriteString(text)
			continue
		}
		for _, doc := range splitDocuments(text) {
			out.WriteString("---\n# Source: " + full + "\n" + doc + "\n")
		}
	}
	return out.String(), nil
}

// splitDocuments splits a rendered file at "---" lines and drops the documents that are empty or
// comments only, as Helm does.
func splitDocuments(text string) []string {
	var docs []string
	for _, doc := range strings.Split("\n"+text, "\n---") {
		doc = strings.Trim(doc, "\n")
		meaningful := false
		for _, line := range strings.Split(doc, "\n") {
			t := strings.TrimSpace(line)
			if t != "" && !strings.HasPrefix(t, "#") {
				meaningful = true
				break
			}
		}
		if meaningful {
			docs = append(docs, strings.TrimRight(doc, " \n"))
		}
	}
	return docs
}

// apiVersions is .Capabilities.APIVersions: `helm template` without a cluster knows the built-in
// groups only, so Has is true for none of the CRD groups (monitoring.coreos.com and the like);
// the chart gates those on values instead.
type apiVersions struct{}

func (apiVersions) Has(string) bool { return false }
