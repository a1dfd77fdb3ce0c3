package jwtauth

import (
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The package's three layers, by file. The token core is what an auditor reads alone:
// strict JSON, claims, HS256 and their errors. The session layer keeps refresh tokens
// and their sessions on a Store. Every other non-test file is HTTP, above both.
var (
	coreFiles    = []string{"errors.go", "json.go", "claims.go", "sign.go"}
	sessionFiles = []string{"refresh.go", "record.go", "memstore.go", "events.go"}
)

// TestLayers type-checks the package and fails when a core file uses anything defined
// outside the core, when a session file uses anything defined in an HTTP file, or when
// either imports net/http: a lower layer never uses a higher one.
func TestLayers(t *testing.T) {
	fset := token.NewFileSet()
	paths, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	var files []*ast.File
	for _, p := range paths {
		if strings.HasSuffix(p, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	info := &types.Info{Uses: map[*ast.Ident]types.Object{}}
	conf := types.Config{Importer: importer.Default()}
	pkg, err := conf.Check("jwtauth", fset, files, info)
	if err != nil {
		t.Fatal(err)
	}
	layer := func(file string) int { // 0 core, 1 sessions, 2 HTTP
		switch {
		case slices.Contains(coreFiles, file):
			return 0
		case slices.Contains(sessionFiles, file):
			return 1
		}
		return 2
	}
	names := []string{"token core", "session layer", "HTTP layer"}
	for _, name := range append(slices.Clone(coreFiles), sessionFiles...) {
		if !slices.Contains(paths, name) {
			t.Errorf("%s is listed in a layer but is not in the package", name)
		}
	}
	for _, f := range files {
		file := filepath.Base(fset.Position(f.Pos()).Filename)
		for _, im := range f.Imports {
			if path, _ := strconv.Unquote(im.Path.Value); path == "net/http" && layer(file) < 2 {
				t.Errorf("%s (%s) imports net/http", file, names[layer(file)])
			}
		}
	}
	for id, obj := range info.Uses {
		if obj.Pkg() != pkg || !obj.Pos().IsValid() {
			continue
		}
		from := filepath.Base(fset.Position(id.Pos()).Filename)
		def := filepath.Base(fset.Position(obj.Pos()).Filename)
		if layer(from) < layer(def) && (layer(from) == 0 || layer(def) == 2) {
			t.Errorf("%s: %s (%s) uses %s, defined in %s (%s)",
				fset.Position(id.Pos()), from, names[layer(from)], id.Name, def, names[layer(def)])
		}
	}
}
