// Command mutate asks which checks no test needs. It disables the package's guards one at
// a time, in a scratch copy, and runs the tests against each mutant: a guard whose mutant
// passes every test is a survivor, a check that no test pins.
//
// A guard is an if, or a case of a switch without a tag, whose body rejects: it returns
// an error other than nil or false, calls a fail method, or returns early from a function
// without results (a fast path that gives up). A mutant turns the condition into
// false && (cond). It is a development tool, run by scripts/mutate.sh; the library does
// not import it.
//
// The tests of -pkgs (relative to DIR) judge each mutant; a mutant that makes them run
// past -timeout (a retry loop whose bound was disabled) counts as killed.
//
//	go run ./internal/mutate [-run REGEX] [-funcs f,g] [-pkgs ". ./sub"] [-timeout 2m] DIR FILE.go...
package main

import (
	"bytes"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/printer"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
)

func main() {
	run := flag.String("run", ".", "the tests to run against each mutant (go test -run)")
	funcs := flag.String("funcs", "", "comma-separated functions to mutate (default: all)")
	flag.StringVar(&pkgs, "pkgs", ".", "space-separated packages whose tests judge each mutant")
	flag.StringVar(&timeout, "timeout", "2m", "go test -timeout for each mutant")
	flag.StringVar(&skip, "skip", "^$", "the tests not to run against each mutant (go test -skip)")
	flag.Parse()
	if flag.NArg() < 2 {
		fmt.Fprintln(os.Stderr, "usage: mutate [-run REGEX] [-funcs f,g] [-pkgs PKGS] [-timeout D] DIR FILE.go...")
		os.Exit(2)
	}
	work, err := os.MkdirTemp("", "mutate")
	check(err)
	defer os.RemoveAll(work)
	if out, err := exec.Command("cp", "-a", flag.Arg(0)+"/.", work).CombinedOutput(); err != nil {
		check(fmt.Errorf("copy: %v: %s", err, out))
	}
	var survived, total int
	for _, name := range flag.Args()[1:] {
		s, n := mutateFile(filepath.Join(work, name), *run, *funcs)
		survived += s
		total += n
	}
	fmt.Printf("guards=%d killed=%d survived=%d\n", total, total-survived, survived)
	if survived > 0 {
		os.Exit(1)
	}
}

// mutateFile tests a mutant for each guard of the file at path, restoring the file after
// each, and prints one line per guard.
func mutateFile(path, run, funcs string) (survived, total int) {
	orig, err := os.ReadFile(path)
	check(err)
	defer os.WriteFile(path, orig, 0o644)
	fset := token.NewFileSet()
	f, err := parser.ParseFile(fset, path, orig, parser.ParseComments)
	check(err)
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Body == nil || funcs != "" && !strings.Contains(","+funcs+",", ","+fn.Name.Name+",") {
			continue
		}
		for _, cond := range guards(fn) {
			var buf bytes.Buffer
			saved := *cond
			*cond = &ast.BinaryExpr{X: ast.NewIdent("false"), Op: token.LAND, Y: &ast.ParenExpr{X: saved}}
			check(printer.Fprint(&buf, fset, f))
			*cond = saved
			check(os.WriteFile(path, buf.Bytes(), 0o644))
			out, err := goTest(filepath.Dir(path), run)
			where := fmt.Sprintf("%s:%d %s", filepath.Base(path), fset.Position(saved.Pos()).Line, fn.Name.Name)
			total++
			switch {
			case err == nil:
				survived++
				fmt.Printf("SURVIVED %-28s if %s\n", where, text(fset, saved))
			case bytes.Contains(out, []byte("[build failed]")):
				check(fmt.Errorf("%s: mutant does not build:\n%s", where, out))
			default:
				fmt.Printf("killed   %-28s if %-40s by %s\n", where, text(fset, saved), killer(out))
			}
		}
	}
	return survived, total
}

// guards returns the conditions of fn's guards, as pointers so that they can be replaced.
func guards(fn *ast.FuncDecl) []*ast.Expr {
	res := fn.Type.Results
	returnsErr := false
	if res != nil {
		id, ok := res.List[len(res.List)-1].Type.(*ast.Ident)
		returnsErr = ok && id.Name == "error"
	}
	rejects := func(body []ast.Stmt) bool { return rejects(body, returnsErr, res == nil) }
	var conds []*ast.Expr
	ast.Inspect(fn.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.FuncLit:
			return false // its returns are not fn's
		case *ast.IfStmt:
			if rejects(n.Body.List) {
				conds = append(conds, &n.Cond)
			}
		case *ast.SwitchStmt:
			if n.Tag != nil {
				break
			}
			for _, c := range n.Body.List {
				if cc := c.(*ast.CaseClause); rejects(cc.Body) {
					for i := range cc.List {
						conds = append(conds, &cc.List[i])
					}
				}
			}
		}
		return true
	})
	return conds
}

// rejects reports whether a guard body rejects: it calls a fail method, or it ends by
// returning false or, when its function returns an error, a variable, a field or an
// fmt.Errorf other than nil, or, when its function has no results, by returning.
func rejects(body []ast.Stmt, returnsErr, noResults bool) bool {
	for _, s := range body {
		if call, ok := s.(*ast.ExprStmt); ok {
			if c, ok := call.X.(*ast.CallExpr); ok {
				if f, ok := c.Fun.(*ast.SelectorExpr); ok && f.Sel.Name == "fail" {
					return true
				}
			}
		}
	}
	if len(body) == 0 {
		return false
	}
	ret, ok := body[len(body)-1].(*ast.ReturnStmt)
	if !ok || len(ret.Results) == 0 {
		return ok && noResults
	}
	switch r := ret.Results[len(ret.Results)-1].(type) {
	case *ast.Ident:
		return r.Name == "false" || returnsErr && r.Name != "nil"
	case *ast.SelectorExpr:
		return returnsErr
	case *ast.CallExpr:
		f, ok := r.Fun.(*ast.SelectorExpr)
		return returnsErr && ok && f.Sel.Name == "Errorf"
	}
	return false
}

// pkgs, timeout and skip are the -pkgs, -timeout and -skip flags.
var pkgs, timeout, skip string

// goTest runs the tests of pkgs in dir, a second time if the first run did not build: a
// build cache shared with other builds can fail a build for reasons of its own.
func goTest(dir, run string) (out []byte, err error) {
	for try := 0; try < 2; try++ {
		args := []string{"test", "-count=1", "-failfast", "-vet=off", "-timeout", timeout, "-run", run, "-skip", skip}
		cmd := exec.Command("go", append(args, strings.Fields(pkgs)...)...)
		cmd.Dir = dir
		if out, err = cmd.CombinedOutput(); !bytes.Contains(out, []byte("[build failed]")) {
			break
		}
	}
	return out, err
}

var failLine = regexp.MustCompile(`--- FAIL: (\S+)`)

// killer names the test that failed, the most nested one.
func killer(out []byte) string {
	best := "the test binary (no --- FAIL line)"
	for _, m := range failLine.FindAllSubmatch(out, -1) {
		if name := string(m[1]); len(name) > len(best) || strings.HasPrefix(best, "the test") {
			best = name
		}
	}
	return best
}

func text(fset *token.FileSet, e ast.Expr) string {
	var b bytes.Buffer
	printer.Fprint(&b, fset, e)
	s := strings.Join(strings.Fields(b.String()), " ")
	if len(s) > 60 {
		s = s[:57] + "..."
	}
	return s
}

func check(err error) {
	if err != nil {
		fmt.Fprintln(os.Stderr, "mutate:", err)
		os.Exit(2)
	}
}
