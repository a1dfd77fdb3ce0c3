package jwtauth

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// secretOperands are the names the package gives to MACs, refresh-token digests and the
// values a Store compares: values an attacker could learn byte by byte from an
// early-exit comparison.
var secretOperands = map[string]bool{
	"sig": true, "mac": true, "sum": true, "pSum": true,
	"stored": true, "digest": true, "presented": true,
	"old": true, "new": true, "val": true,
}

// TestSecretComparisonsAreConstantTime reads the package source: every MAC and
// refresh-token digest comparison uses hmac.Equal or subtle.ConstantTimeCompare
// (RFC 7515 §10.7 for the MAC; the same rule for every token), and no ==, != or
// bytes.Equal has a MAC or digest as an operand (a comparison with nil, which reads no
// byte of the value, excepted). A timing test would be flaky; this one fails on the
// first comparison someone rewrites.
func TestSecretComparisonsAreConstantTime(t *testing.T) {
	want := map[string]string{
		"(*Auth).macMatches":         "hmac.Equal",
		"(*Auth).refresh":            "hmac.Equal",
		"(*MemStore).CompareAndSwap": "subtle.ConstantTimeCompare",
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	found := map[string]bool{}
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fn, ok := d.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			name := funcName(fn)
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					callee := exprName(n.Fun)
					if callee == want[name] {
						found[name] = true
					}
					if callee == "bytes.Equal" || callee == "strings.EqualFold" || callee == "strings.Compare" || callee == "bytes.Compare" {
						for _, arg := range n.Args {
							if mentionsSecret(arg) {
								t.Errorf("%s: %s compares a secret with %s", fset.Position(n.Pos()), fn.Name.Name, callee)
							}
						}
					}
				case *ast.BinaryExpr:
					if (n.Op == token.EQL || n.Op == token.NEQ) && (isSecretValue(n.X) || isSecretValue(n.Y)) && !isNil(n.X) && !isNil(n.Y) {
						t.Errorf("%s: %s compares a secret with %s", fset.Position(n.Pos()), fn.Name.Name, n.Op)
					}
				}
				return true
			})
		}
	}
	for fn, call := range want {
		if !found[fn] {
			t.Errorf("%s no longer calls %s", fn, call)
		}
	}
}

// funcName renders a function as "name" or a method as "(*T).name" or "T.name".
func funcName(fn *ast.FuncDecl) string {
	if fn.Recv == nil || len(fn.Recv.List) == 0 {
		return fn.Name.Name
	}
	switch r := fn.Recv.List[0].Type.(type) {
	case *ast.StarExpr:
		return "(*" + exprName(r.X) + ")." + fn.Name.Name
	default:
		return exprName(r) + "." + fn.Name.Name
	}
}

func isNil(e ast.Expr) bool {
	id, ok := e.(*ast.Ident)
	return ok && id.Name == "nil"
}

// isSecretValue reports whether e is a MAC or digest itself (sig, stored, sig[:]), as
// opposed to its length or an error beside it.
func isSecretValue(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return secretOperands[e.Name]
	case *ast.SliceExpr:
		return isSecretValue(e.X)
	case *ast.SelectorExpr:
		return secretOperands[e.Sel.Name]
	case *ast.CallExpr: // a conversion, string(sig) or []byte(stored), not len(sig)
		_, toBytes := e.Fun.(*ast.ArrayType)
		return (toBytes || exprName(e.Fun) == "string") && len(e.Args) == 1 && isSecretValue(e.Args[0])
	}
	return false
}

func mentionsSecret(e ast.Expr) bool {
	hit := false
	ast.Inspect(e, func(n ast.Node) bool {
		if id, ok := n.(*ast.Ident); ok && secretOperands[id.Name] {
			hit = true
		}
		return !hit
	})
	return hit
}

// exprName renders a callee such as hmac.Equal or subtle.ConstantTimeCompare.
func exprName(e ast.Expr) string {
	switch e := e.(type) {
	case *ast.Ident:
		return e.Name
	case *ast.SelectorExpr:
		return exprName(e.X) + "." + e.Sel.Name
	}
	return ""
}
