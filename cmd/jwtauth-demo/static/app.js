// The jwtauth demo's browser app. The access and refresh tokens are HttpOnly cookies
// that this script never sees: it calls fetch, and the browser attaches the cookies.
// It calls the same routes as curl and apps (/auth, /api/orders); the server answers
// its logins and refreshes with new cookies and an empty body, because the browser
// marks its fetches as a browser's (Origin, Sec-Fetch-Site), which no script can undo.
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

  // For tests and the console: the same actions, each returning the status it got.
  window.app = {
    login, loadOrders, addOrder, refreshTokens, logout, requests,
    get done() { return done; },
  };

  action(start)();
})();
