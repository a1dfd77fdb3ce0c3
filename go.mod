module github.com/jwtauth/jwtauth

go 1.22
