package jwtauth

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// The tokens of a request: where they travel (the access token in the Authorization
// header, a cookie or the query string, the refresh token in the JSON body, a cookie or
// the query string), the cross-origin check that every token read from a cookie passes,
// and the verification of the access token that Check, Protected and the endpoints
// share.

// Causes of a missing or ambiguous token. The missing ones wrap ErrTokenMissing and say
// where the token was looked for last, which picks the exception name.
var (
	errNoHeader       = fmt.Errorf("%w: no authorization header", ErrTokenMissing)
	errNoCookie       = fmt.Errorf("%w: no access token cookie", ErrTokenMissing)
	errHeaderIgnored  = fmt.Errorf("%w: an Authorization header was sent, but cookie mode reads the cookie", errNoCookie)
	errNoQueryArg     = fmt.Errorf("%w: no access token query argument", ErrTokenMissing)
	errTwoHeaders     = fmt.Errorf("%w: more than one authorization header", ErrInvalidAuthorizationHeader)
	errHeaderScheme   = fmt.Errorf("%w: not the configured prefix, one space and a token", ErrInvalidAuthorizationHeader)
	errHeaderEmpty    = fmt.Errorf("%w: empty header", ErrInvalidAuthorizationHeader)
	errTwoCookies     = fmt.Errorf("%w: access token cookie sent more than once", ErrTokenInvalid)
	errSplitHalf      = fmt.Errorf("%w: split access token cookie without its other half", ErrTokenInvalid)
	errTwoQueryArgs   = fmt.Errorf("%w: access token query argument repeated", ErrTokenInvalid)
	errNoRefreshBody  = errors.New("jwtauth: refresh token missing in the JSON body")
	errNoRefreshCook  = errors.New("jwtauth: refresh token cookie missing")
	errNoRefreshQuery = errors.New("jwtauth: refresh token query argument missing")
	errTwoRefresh     = errors.New("jwtauth: refresh token sent more than once")
	errBadBody        = errors.New("jwtauth: request body is not a JSON object with a string refresh token")
	errCrossOrigin    = errors.New("jwtauth: cross-origin request refused")
)

// place names a token, as a query argument and as a cookie, and the errors of the places
// it may be missing from or repeated in.
type place struct {
	name, cookie         string
	noCookie, twoCookies error
	noQuery, twoQuery    error
}

// readToken reads the access token from r or, with refresh, the refresh token. It is
// the one place that knows where tokens travel, in Sanic JWT's order: the cookie (with
// Config.Cookies), then the query string (with InsecureQueryString), then the
// Authorization header for an access token or the JSON body for a refresh token. A
// place that lacks the token ends the search with its own "missing" error, unless
// HeaderFallback sends the search on to the next place.
//
// Ambiguous input is refused, never resolved by picking one value: two Authorization
// headers, two cookies, two query arguments or two body members of the token's name.
// RFC 6750 §2 lets a client use only one method per request ("Clients MUST NOT use more
// than one method to transmit the token in each request"); we do not go as far as
// rejecting a second method, but we never guess between two values of one.
//
// An access token from the header may come under the DPoP scheme (RFC 9449 §7.1): dpop
// says so.
func (a *Auth) readToken(r *http.Request, refresh bool) (tok string, dpop bool, err error) {
	if a.cookies != nil || a.cfg.InsecureQueryString {
		p := place{a.cfg.AccessTokenName, a.cookie, errNoCookie, errTwoCookies, errNoQueryArg, errTwoQueryArgs}
		if refresh {
			p = place{a.cfg.RefreshTokenName, a.cfg.RefreshTokenName, errNoRefreshCook, errTwoRefresh, errNoRefreshQuery, errTwoRefresh}
		}
		if a.cookies != nil {
			if tok, err := a.cookieToken(r, p, refresh); err != p.noCookie || !a.cfg.HeaderFallback {
				return tok, false, err
			}
		}
		if a.cfg.InsecureQueryString {
			q, _ := url.ParseQuery(r.URL.RawQuery) // what Go could parse of a malformed query
			if tok, err := one(q[p.name], p.noQuery, p.twoQuery); err != p.noQuery || !a.cfg.HeaderFallback {
				return tok, false, err
			}
		}
	}
	if refresh {
		tok, err = bodyToken(r.Body, a.cfg.RefreshTokenName)
		return tok, false, err
	}
	return a.headerToken(r)
}

// one returns the only value of vals: missing when there is none (an empty value, as in
// "?access_token=", is no token), twice when there are several.
func one(vals []string, missing, twice error) (string, error) {
	switch {
	case len(vals) == 0 || len(vals) == 1 && vals[0] == "":
		return "", missing
	case len(vals) > 1:
		return "", twice
	}
	return vals[0], nil
}

// sameOrigin refuses, in cookie mode, an unsafe request from another origin: the check
// of Go 1.25's net/http.CrossOriginProtection, written here for older Go versions. GET,
// HEAD and OPTIONS are safe and always allowed. A browser's Fetch Metadata decides first
// (Sec-Fetch-Site: same-origin or none is allowed; same-site, a sibling subdomain, is
// not); without it, an Origin header must name the request's host; a request with
// neither header comes from no browser (or a very old one) and is allowed, since a
// cross-site request forgery needs a browser. Cookies.TrustedOrigins are allowed
// whatever the headers say.
func (a *Auth) sameOrigin(r *http.Request) error {
	switch {
	case a.cookies == nil, r.Method == http.MethodGet, r.Method == http.MethodHead, r.Method == http.MethodOptions:
		return nil
	}
	origin, site := r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site")
	switch {
	case site == "same-origin", site == "none", site == "" && origin == "":
		return nil
	case origin != "" && slices.Contains(a.cookies.TrustedOrigins, origin):
		return nil
	case site == "":
		// The Host header carries no scheme: an HTTP page posting to the HTTPS site
		// passes here, as with net/http. Browsers without Fetch Metadata are from
		// before 2023, and HSTS closes the gap.
		if u, err := url.Parse(origin); err == nil && u.Host == r.Host {
			return nil
		}
	}
	return errCrossOrigin
}

// cookieToken reads the token's cookie, on a request from this origin. Browsers send two
// cookies of one name when they differ in Path or Domain, and we do not guess which one
// is meant. With Cookies.Split the access token is its header.payload cookie joined to
// its signature cookie. A missing cookie beside an Authorization header says that the
// header is not read.
func (a *Auth) cookieToken(r *http.Request, p place, refresh bool) (string, error) {
	var vals, sigs []string
	sigName := p.cookie + "_signature"
	for _, c := range r.Cookies() {
		switch c.Name {
		case p.cookie:
			vals = append(vals, c.Value)
		case sigName:
			sigs = append(sigs, c.Value)
		}
	}
	tok, err := one(vals, p.noCookie, p.twoCookies)
	if !refresh && a.cookies.Split {
		sig, sigErr := one(sigs, p.noCookie, p.twoCookies)
		switch {
		case (err == p.noCookie) != (sigErr == p.noCookie):
			return "", errSplitHalf
		case err == nil:
			tok, err = tok+"."+sig, sigErr
		}
	}
	switch {
	case err == errNoCookie && !a.cfg.HeaderFallback && r.Header.Get(a.cfg.AuthorizationHeader) != "":
		return "", errHeaderIgnored
	case err == nil:
		// A browser attaches cookies to cross-site requests too: an unsafe one must
		// come from this origin (RFC 6265bis §8.2).
		err = a.sameOrigin(r)
	}
	return tok, err
}

// headerToken reads "<prefix> <token>", or "DPoP <token>" (dpop), from the
// authorization header. RFC 7235 §2.1: the scheme is case-insensitive, compared here in
// ASCII only; RFC 6750 §2.1 b64token syntax has exactly one space after "Bearer".
// Anything else is ambiguous and refused.
func (a *Auth) headerToken(r *http.Request) (tok string, dpop bool, err error) {
	vals := r.Header[a.cfg.AuthorizationHeader] // canonical since New
	switch {
	case len(vals) == 0:
		return "", false, errNoHeader
	case len(vals) > 1:
		return "", false, errTwoHeaders
	case vals[0] == "":
		return "", false, errHeaderEmpty
	}
	tok = vals[0]
	if !a.cfg.AuthorizationHeaderNoPrefix {
		scheme, rest, ok := strings.Cut(tok, " ")
		dpop = asciiEqualFold(scheme, "DPoP")
		if !ok || !dpop && !asciiEqualFold(scheme, a.cfg.AuthorizationHeaderPrefix) {
			return "", false, errHeaderScheme
		}
		tok = rest
	}
	if tok == "" || strings.IndexByte(tok, ' ') >= 0 || strings.IndexByte(tok, '\t') >= 0 {
		return "", false, errHeaderScheme
	}
	return tok, dpop, nil
}

// asciiEqualFold compares s with t, which must be ASCII, without regard to ASCII case.
// No Unicode case folding can make them equal: a non-ASCII letter that folds to an ASCII
// one (the Kelvin sign to "k") is longer in UTF-8, and the lengths must match.
func asciiEqualFold(s, t string) bool { return len(s) == len(t) && strings.EqualFold(s, t) }

// bodyToken reads a JSON object from body, with the package's strict lexer, and returns
// its member name, which must be a string. An empty body, an object without the member,
// or a null member is errNoRefreshBody; a body that is not exactly one strict JSON
// object or a non-string value is errBadBody; the member twice (encoding/json would
// silently keep the last one) is errTwoRefresh. A read error, a *http.MaxBytesError
// among them, is returned as it is.
func bodyToken(body io.Reader, name string) (string, error) {
	if body == nil {
		return "", errNoRefreshBody
	}
	b, err := io.ReadAll(body) // bounded by Endpoints.MaxBodyBytes
	if err != nil {
		if errors.As(err, new(*http.MaxBytesError)) {
			return "", err // a 413, not a malformed body
		}
		return "", errBadBody
	}
	l := lexer{s: string(b), syntax: errBadBody}
	if l.ws(); l.i == len(l.s) {
		return "", errNoRefreshBody
	}
	var vals []string
	for key, ok := l.member('{', nil); ok; key, ok = l.member(',', nil) {
		switch {
		case key != name:
			l.skip(0)
		case l.peek() == 'n': // "refresh_token": null is no token
			l.literal()
			vals = append(vals, "")
		default:
			vals = append(vals, l.str(errBadBody))
		}
	}
	if l.end(); l.err != nil {
		return "", errBadBody
	}
	return one(vals, errNoRefreshBody, errTwoRefresh)
}

// Causes of an access token refused where a session is needed.
var (
	errRefreshLate = fmt.Errorf("%w: past the refresh window", ErrTokenExpired)
	errNoUserID    = fmt.Errorf("%w: token has no user id", ErrTokenInvalid)
)

// requestClaims reads the access token of r and verifies it into a Claims from alloc,
// with its DPoP proof when it is bound (returned; nil for a bearer token). With
// allowExpired (the refresh and logout endpoints), an expired token is accepted
// within Refresh.Window (plus Leeway) after its exp when a window is set, and without
// exp (InsecureNoExpiry) there is nothing to measure the window from, and the token is
// accepted; it must name a user. Otherwise, with Refresh.VerifySessions, the token's
// session must be live.
func (a *Auth) requestClaims(r *http.Request, allowExpired bool, alloc func() *Claims) (*Claims, *keyProof, error) {
	tok, dpop, err := a.readToken(r, false)
	if err != nil {
		return nil, nil, err
	}
	c, err := a.tok.verify(tok, allowExpired, alloc)
	var p *keyProof
	if err == nil {
		p, err = a.binding(r, tok, c, dpop)
	}
	switch {
	case err != nil:
		return nil, nil, err
	case !allowExpired && a.sess != nil && a.sess.cfg.VerifySessions:
		err = a.sess.live(r.Context(), c.UserID, c.SessionID)
	case !allowExpired:
	case a.sess.cfg.Window > 0 && !c.ExpiresAt.IsZero() && a.tok.now().After(c.ExpiresAt.Add(a.tok.leeway+a.sess.cfg.Window)):
		err = errRefreshLate
	case c.UserID == "":
		err = errNoUserID
	}
	if err != nil {
		return nil, nil, err
	}
	return c, p, nil
}

// sessionLabel is the label of the session a login opens: Config.SessionLabel's answer,
// or the User-Agent's summary, cut to maxLabel printable ASCII bytes.
func (a *Auth) sessionLabel(r *http.Request) string {
	label := deviceLabel(r.UserAgent())
	if a.cfg.SessionLabel != nil {
		label = a.cfg.SessionLabel(r)
	}
	b := make([]byte, 0, maxLabel)
	for i := 0; i < len(label) && len(b) < maxLabel; i++ {
		if c := label[i]; c >= ' ' && c <= '~' {
			b = append(b, c)
		}
	}
	return string(b)
}

// deviceLabel summarises a User-Agent header as "browser on system" from well-known
// product tokens (the first match of each list wins: Edge's and Opera's headers name
// Chrome too, Chrome's Safari, Android's Linux), else gives its first product token
// (curl/8.5.0, MyApp/2.1).
func deviceLabel(ua string) string {
	first := func(names ...string) string {
		for i := 0; i < len(names); i += 2 {
			if strings.Contains(ua, names[i]) {
				return names[i+1]
			}
		}
		return ""
	}
	browser := first("Edg/", "Edge", "OPR/", "Opera", "Firefox/", "Firefox", "FxiOS/", "Firefox", "CriOS/", "Chrome",
		"Chrome/", "Chrome", "Safari/", "Safari")
	system := first("Android", "Android", "iPhone", "iOS", "iPad", "iPadOS", "CrOS", "ChromeOS", "Windows", "Windows",
		"Macintosh", "macOS", "Linux", "Linux")
	switch {
	case browser != "" && system != "":
		return browser + " on " + system
	case browser != "":
		return browser
	}
	token, _, _ := strings.Cut(ua, " ")
	return token
}
