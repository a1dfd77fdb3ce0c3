package jwtauth

import (
	"crypto/rand"
	"encoding/base64"
)

// refreshTokenBytes is the entropy of a default refresh token: 18 bytes from
// crypto/rand, 144 bits, which base64url writes as exactly 24 characters.
const refreshTokenBytes = 18

// generateRefreshToken is the default Config.GenerateRefreshToken.
func generateRefreshToken() (string, error) {
	var b [refreshTokenBytes]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}
