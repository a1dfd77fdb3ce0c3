// The jwtauth demo's browser app. The access and refresh tokens are HttpOnly cookies
// that this script never sees: it calls fetch, and the browser attaches the cookies.
// It calls the same routes as curl and apps (/auth, /api/orders); the server answers
// its logins and refreshes with new cookies and an empty body, because the browser
// marks its fetches as a browser's (Origin, Sec-Fetch-Site), which no script can undo.
// Its sessions list (GET /auth/sessions) ends another session with DELETE
// /auth/sessions/{id}, sent by the same call as every other request: a same-origin
// fetch with the cookies, which the server's cross-origin check lets through.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);

  // Every request the page made, with the status it got, for the list on the page.
  const requests = [];
  // How many user actions (a login, a click) have finished; tests wait on it.
  let done = 0;

  // call makes one request and logs it. The body, if any, is sent as JSON.
  async function call(method, path, body) {
    const init = { method, credentials: 'same-origin', headers: { Accept: 'application/json' } };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    let status = 0;
    let data = null;
    try {
      const resp = await fetch(path, init);
      status = resp.status;
      const text = await resp.text();
      data = text ? JSON.parse(text) : null;
    } catch (err) {
      data = { reasons: [String(err)] };
    }
    requests.push({ method, path, status });
    const li = document.createElement('li');
    li.textContent = `${method} ${path} ${status || 'failed'}`;
    $('log').append(li);
    return { status, data };
  }

  // api calls a protected route. When the access token has expired (a 401 other than
  // "no token at all", which names the header: with no cookie the server looks there
  // last), it refreshes once and tries again: an SPA's whole refresh logic.
  async function api(method, path, body) {
    let r = await call(method, path, body);
    if (r.status === 401 && r.data?.exception !== 'MissingAuthorizationHeader') {
      if ((await call('POST', '/auth/refresh')).status === 200) {
        r = await call(method, path, body);
      }
    }
    return r;
  }

  function reason(r) {
    return r.data?.reasons?.join(' ') || r.data?.error || `HTTP ${r.status}`;
  }

  function say(text) {
    $('message').textContent = text;
  }

  function show(state) {
    document.body.dataset.state = state;
    $('login-form').hidden = state !== 'login';
    $('app').hidden = state !== 'app';
    $('who').hidden = state !== 'app';
  }

  function showLogin(text) {
    show('login');
    $('sessions').replaceChildren(); // the next user must not see this one's sessions
    say(text);
    $('username').focus();
  }

  // failed shows what went wrong, and the login form when the session is gone.
  function failed(r) {
    if (r.status === 401) {
      showLogin('Your session has ended: log in again.');
    } else {
      say(reason(r));
    }
  }

  function renderOrders(orders) {
    const list = $('orders');
    list.replaceChildren();
    for (const o of orders) {
      const li = document.createElement('li');
      li.textContent = `#${o.id} ${o.item} (by ${o.by})`;
      list.append(li);
    }
    if (orders.length === 0) {
      const li = document.createElement('li');
      li.textContent = 'No orders yet.';
      list.append(li);
    }
  }

  // timeElement shows an RFC 3339 time of the server in the browser's locale.
  function timeElement(iso) {
    const el = document.createElement('time');
    el.dateTime = iso;
    el.textContent = new Date(iso).toLocaleString();
    return el;
  }

  // renderSessions lists the sessions: the device's label, when it logged in and when
  // it was last used, a "current" marker on this browser's, and an End button on each
  // other one.
  function renderSessions(sessions) {
    const list = $('sessions');
    list.replaceChildren();
    for (const s of sessions) {
      const li = document.createElement('li');
      li.dataset.sessionId = s.id;
      const label = document.createElement('strong');
      label.className = 'label';
      label.textContent = s.label || 'Unknown device';
      li.append(label);
      if (s.current) {
        li.classList.add('current');
        const marker = document.createElement('span');
        marker.className = 'marker';
        marker.textContent = 'current';
        li.append(' ', marker);
      } else {
        const end = document.createElement('button');
        end.type = 'button';
        end.className = 'end';
        end.dataset.sessionId = s.id;
        end.textContent = 'End';
        end.setAttribute('aria-label', `End the session on ${label.textContent}`);
        li.append(' ', end);
      }
      const times = document.createElement('span');
      times.className = 'times';
      times.append('logged in ', timeElement(s.created_at), ', last used ', timeElement(s.last_used_at));
      li.append(times);
      list.append(li);
    }
  }

  // start shows the app when the cookies hold a session, and the login form otherwise.
  async function start() {
    const r = await api('GET', '/auth/me');
    if (r.status !== 200) {
      showLogin('');
      return r.status;
    }
    $('user').textContent = r.data.me.name;
    $('scopes').textContent = `(${r.data.me.scopes.join(' ')})`;
    show('app');
    return loadOrders();
  }

  async function login(username, password) {
    const r = await call('POST', '/auth', { username, password });
    if (r.status !== 200) {
      say(reason(r));
      return r.status;
    }
    $('password').value = '';
    say('');
    await start();
    return r.status;
  }

  async function loadOrders() {
    const r = await api('GET', '/api/orders');
    if (r.status === 200) {
      renderOrders(r.data.orders);
    } else {
      failed(r);
    }
    return r.status;
  }

  async function addOrder(item) {
    const r = await api('POST', '/api/orders', { item });
    if (r.status !== 201) {
      failed(r);
      return r.status;
    }
    say(`Order #${r.data.id} added.`);
    await loadOrders();
    return r.status;
  }

  async function refreshTokens() {
    const r = await call('POST', '/auth/refresh');
    if (r.status === 200) {
      say('Tokens refreshed.');
    } else {
      failed(r);
    }
    return r.status;
  }

  async function loadSessions() {
    const r = await api('GET', '/auth/sessions');
    if (r.status === 200) {
      renderSessions(r.data.sessions);
    } else {
      failed(r);
    }
    return r.status;
  }

  // endSession ends another session of the user, then lists the sessions again.
  async function endSession(id) {
    const r = await api('DELETE', `/auth/sessions/${encodeURIComponent(id)}`);
    if (r.status !== 204) {
      failed(r);
      return r.status;
    }
    say('Session ended.');
    await loadSessions();
    return r.status;
  }

  async function logout() {
    const r = await call('POST', '/auth/logout');
    if (r.status === 204) {
      renderOrders([]);
      showLogin('Logged out.');
    } else {
      failed(r);
    }
    return r.status;
  }

  // action runs a user action and counts it when it has finished.
  function action(fn) {
    return async (event) => {
      event?.preventDefault();
      try {
        await fn();
      } finally {
        done++;
      }
    };
  }

  $('login-form').addEventListener('submit', action(() => login($('username').value, $('password').value)));
  $('order-form').addEventListener('submit', action(async () => {
    if ((await addOrder($('item').value)) === 201) $('item').value = '';
  }));
  $('reload').addEventListener('click', action(loadOrders));
  $('refresh').addEventListener('click', action(refreshTokens));
  $('logout').addEventListener('click', action(logout));
  $('sessions-load').addEventListener('click', action(loadSessions));
  // The End buttons come and go with the list: one listener on the list serves them.
  $('sessions').addEventListener('click', (event) => {
    const end = event.target.closest('button[data-session-id]');
    if (end) action(() => endSession(end.dataset.sessionId))(event);
  });

  // For tests and the console: the same actions, each returning the status it got.
  window.app = {
    login, loadOrders, addOrder, refreshTokens, logout, loadSessions, endSession, requests,
    get done() { return done; },
  };

  action(start)();
})();
