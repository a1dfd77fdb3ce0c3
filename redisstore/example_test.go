package redisstore_test

import (
	"context"
	"net/http"
	"os"
	"time"

	"github.com/jwtauth/jwtauth"
	"github.com/jwtauth/jwtauth/redisstore"
	"github.com/redis/go-redis/v9"
)

// Wiring the store into jwtauth: every replica of the service points at the same
// Redis and the same Secret, and any of them can refresh a token another issued.
// (No Output line: it needs a Redis server, so it is compiled, not run.)
func Example() {
	rdb := redis.NewClient(&redis.Options{
		Addr:        "localhost:6379",
		DialTimeout: time.Second,
		ReadTimeout: 500 * time.Millisecond, // a hung Redis makes refreshes 500, not hang
	})
	store := redisstore.New(rdb, redisstore.Options{
		Prefix: "myapp:refresh:", // default "jwtauth:refresh:"
	})
	auth, err := jwtauth.New(jwtauth.Config{
		Secret: []byte(os.Getenv("JWT_SECRET")), // the same on every replica
		Endpoints: &jwtauth.Endpoints{
			Authenticate: func(r *http.Request) (*jwtauth.User, error) {
				return &jwtauth.User{ID: "alice"}, nil // check credentials here
			},
		},
		RetrieveUser: func(ctx context.Context, c *jwtauth.Claims) (*jwtauth.User, error) {
			return &jwtauth.User{ID: c.UserID}, nil // look the user up here
		},
		Refresh: &jwtauth.Refresh{
			Store:       store,
			IdleTimeout: 14 * 24 * time.Hour, // the TTL of each write; default 30 days
		},
	})
	if err != nil {
		panic(err)
	}
	_ = auth
}
