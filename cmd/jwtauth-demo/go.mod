module github.com/jwtauth/jwtauth/cmd/jwtauth-demo

go 1.22

require (
	github.com/jwtauth/jwtauth v0.0.0
	golang.org/x/crypto v0.33.0
)

replace github.com/jwtauth/jwtauth => ../..
