package jwtauth

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// secretOperands are the names the package gives to MACs, refresh tokens and the
// values a Store compares: values an attacker could learn byte by byte from an
// early-exit comparison.
var secretOperands = map[string]bool{
	"sig": true, "mac": true, "sum": true, "pSum": true,
	"stored": true, "digest": true, "presented": true,
	"old": true, "new": true, "val": true,
}

// secretProducers are the functions and methods whose results are MACs or refresh
// tokens: session.token and session.current derive a session's refresh tokens,
// recordMAC is a record's MAC, and macState.sum and macKey.mac are any HMAC. A variable assigned from
// one of them, or from another secret (p := []byte(presented)), is a secret too.
var secretProducers = map[string]bool{
	"token": true, "current": true, "recordMAC": true, "sum": true, "mac": true,
}

// variableTimeCompares are the comparisons that stop at the first differing byte.
var variableTimeCompares = map[string]bool{
	"bytes.Equal": true, "bytes.Compare": true, "strings.EqualFold": true, "strings.Compare": true,
	"slices.Equal": true, "slices.Compare": true, "reflect.DeepEqual": true,
}

// TestSecretComparisonsAreConstantTime reads the package source: the functions that
// compare a MAC or a refresh token do so with hmac.Equal or subtle.ConstantTimeCompare
// (RFC 7515 §10.7 for the MAC; the same rule for every token), and no ==, != or
// bytes.Equal (or the like) anywhere in the package has a MAC or token as an operand (a
// comparison with nil, which reads no byte of the value, excepted). Those functions are
// macMatches (a token's signature), match (a presented refresh token against a
// session's generations), openRecord (a store record's MAC) and MemStore's
// CompareAndSwap (the stored value). A timing test would be flaky; this one fails on the
// first comparison someone rewrites.
func TestSecretComparisonsAreConstantTime(t *testing.T) {
	want := map[string]string{
		"(*tokens).macMatches":       "hmac.Equal",
		"(*sessions).match":          "hmac.Equal",
		"openRecord":                 "hmac.Equal",
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
			sec := secretsOf(fn)
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CallExpr:
					callee := exprName(n.Fun)
					if callee == want[name] {
						found[name] = true
					}
					if variableTimeCompares[callee] && slices.ContainsFunc(n.Args, sec.mentions) {
						t.Errorf("%s: %s compares a secret with %s", fset.Position(n.Pos()), fn.Name.Name, callee)
					}
				case *ast.BinaryExpr:
					if (n.Op == token.EQL || n.Op == token.NEQ) && (sec.is(n.X) || sec.is(n.Y)) && !isNil(n.X) && !isNil(n.Y) {
						t.Errorf("%s: %s compares a secret with %s", fset.Position(n.Pos()), fn.Name.Name, n.Op)
					}
				case *ast.SwitchStmt: // switch secret { case x: } is a == per case
					if n.Tag != nil && sec.is(n.Tag) {
						t.Errorf("%s: %s compares a secret in a switch", fset.Position(n.Pos()), fn.Name.Name)
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

// secrets are the names that hold a secret in one function: secretOperands and the
// variables the function assigns from a secret.
type secrets map[string]bool

// secretsOf collects the secret names of fn, following assignments (x := s.token(...),
// p := []byte(presented), a, b := sig, mac) until nothing changes.
func secretsOf(fn *ast.FuncDecl) secrets {
	sec := secrets{}
	for k := range secretOperands {
		sec[k] = true
	}
	for changed := true; changed; {
		changed = false
		taint := func(lhs ast.Expr) {
			if id, ok := lhs.(*ast.Ident); ok && id.Name != "_" && !sec[id.Name] {
				sec[id.Name], changed = true, true
			}
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			switch n := n.(type) {
			case *ast.AssignStmt:
				for i, lhs := range n.Lhs {
					switch {
					case len(n.Rhs) == len(n.Lhs) && sec.is(n.Rhs[i]):
						taint(lhs)
					case len(n.Rhs) == 1 && len(n.Lhs) > 1 && sec.is(n.Rhs[0]):
						taint(lhs) // x, err := recordMAC(...)
					}
				}
			case *ast.ValueSpec:
				for i, id := range n.Names {
					if i < len(n.Values) && sec.is(n.Values[i]) {
						taint(id)
					}
				}
			}
			return true
		})
	}
	return sec
}

// is reports whether e is a secret itself (sig, t[:], string(p), s.token(k, g)), as
// opposed to its length or an error beside it.
func (sec secrets) is(e ast.Expr) bool {
	switch e := e.(type) {
	case *ast.Ident:
		return sec[e.Name]
	case *ast.ParenExpr:
		return sec.is(e.X)
	case *ast.SliceExpr:
		return sec.is(e.X)
	case *ast.IndexExpr: // one byte of a secret is compared byte by byte all the same
		return sec.is(e.X)
	case *ast.StarExpr:
		return sec.is(e.X)
	case *ast.SelectorExpr:
		return secretOperands[e.Sel.Name]
	case *ast.CallExpr:
		// A conversion, string(sig), []byte(stored) or [24]byte(p), not len(sig); or a
		// call of a secret producer.
		switch f := e.Fun.(type) {
		case *ast.ArrayType:
			return len(e.Args) == 1 && sec.is(e.Args[0])
		case *ast.Ident:
			if f.Name == "string" {
				return len(e.Args) == 1 && sec.is(e.Args[0])
			}
			return secretProducers[f.Name]
		case *ast.SelectorExpr:
			return secretProducers[f.Sel.Name]
		}
	}
	return false
}

// mentions reports whether any part of e is a secret.
func (sec secrets) mentions(e ast.Expr) bool {
	hit := false
	ast.Inspect(e, func(n ast.Node) bool {
		if x, ok := n.(ast.Expr); ok && sec.is(x) {
			hit = true
		}
		return !hit
	})
	return hit
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
