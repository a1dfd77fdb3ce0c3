module github.com/jwtauth/jwtauth/benchmarks

go 1.24

replace github.com/jwtauth/jwtauth => ../

require (
	github.com/cristalhq/jwt/v5 v5.4.0
	github.com/golang-jwt/jwt/v5 v5.3.1
	github.com/jwtauth/jwtauth v0.0.0
	github.com/pascaldekloe/jwt v1.12.0
)

require github.com/go-chi/chi/v5 v5.5.0
