# servers.sh — the real shop's servers, for run.sh, tests/scenario/real_story.sh
# and bench/real_story.sh: PostgreSQL, two nginx webservers and HAProxy,
# each from its own directory with its own configuration on loopback
# ports, and a choreo agent for each. Sourced by bash, not run.
#
# As root, PostgreSQL runs as the user postgres (or nobody), nginx's
# workers and HAProxy as nobody; as any other user, everything runs as
# that user. Nothing touches the system's own configurations, logs or
# ports.
#
#   real_start_shop WORK CHOREO   start everything in WORK (sets REAL_*_PORT)
#   real_stop                     stop everything started (call it at exit)

REAL_HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REAL_BEHAVIOURS=${CHOREO_BEHAVIOURS:-$(cd "$REAL_HERE/../../behaviours" && pwd)}
REAL_PGBIN=${PGBIN:-/usr/lib/postgresql/15/bin}
PATH=$PATH:/usr/sbin:/sbin
REAL_PIDS=()
REAL_PIDFILES=()
REAL_PGDATA=
REAL_PORTS=" "

if [ "$(id -u)" = 0 ]; then
  if id postgres >/dev/null 2>&1; then REAL_PGUSER=postgres; else REAL_PGUSER=nobody; fi
  REAL_WORKER_USER="nobody"
  REAL_WORKER_GROUP=$(id -gn nobody 2>/dev/null || echo nogroup)
else
  REAL_PGUSER=$(id -un)
  REAL_WORKER_USER=
fi

# real_missing: the commands this needs that are not installed (none: empty).
real_missing() {
  local c absent=()
  for c in nginx haproxy socat curl jq openssl psql pg_isready "$REAL_PGBIN/initdb" "$REAL_PGBIN/pg_ctl"; do
    command -v "$c" >/dev/null 2>&1 || absent+=("$c")
  done
  if [ "$(id -u)" = 0 ] && ! command -v runuser >/dev/null 2>&1; then absent+=(runuser); fi
  echo "${absent[*]}"
}

# real_free_port: a TCP port on 127.0.0.1 that nothing listens on, below the
# ephemeral range, and not given out before.
real_free_port() {
  local p
  for _ in $(seq 1 500); do
    p=$((10000 + RANDOM % 22000))
    case $REAL_PORTS in *" $p "*) continue ;; esac
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
      REAL_PORTS="$REAL_PORTS$p "
      echo "$p"
      return 0
    fi
  done
  return 1
}

# real_until SECONDS WHAT COMMAND...: poll COMMAND every 20 ms; 1 (and a
# message) at the deadline.
real_until() {
  local secs=$1 what=$2
  shift 2
  local deadline=$(($(date +%s%N) + secs * 1000000000))
  until "$@" >/dev/null 2>&1; do
    if [ "$(date +%s%N)" -ge "$deadline" ]; then
      echo "timed out after ${secs}s waiting for: $what" >&2
      return 1
    fi
    sleep 0.02
  done
}

real_as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$REAL_PGUSER" -- "$@"; else "$@"; fi
}

# real_psql PORT [PSQL_OPTION]...: psql as postgres to the shop database.
real_psql() {
  local port=$1
  shift
  psql -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d shop "$@"
}

# real_start_postgres DIR PORT: a new cluster in DIR/data, TCP only on
# 127.0.0.1:PORT, with a shop database and a products table.
real_start_postgres() {
  local dir=$1 port=$2
  mkdir -p "$dir"
  [ "$(id -u)" != 0 ] || chown "$REAL_PGUSER" "$dir"
  real_as_pg "$REAL_PGBIN/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 \
    --locale=C --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; return 1; }
  cat >>"$dir/data/postgresql.conf" <<CONF
# shop-real: loopback only, no Unix socket, durability traded for speed
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
CONF
  REAL_PGDATA=$dir/data
  real_as_pg "$REAL_PGBIN/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 30 start \
    >/dev/null || { cat "$dir/postgres.log" >&2; return 1; }
  psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d postgres -c "CREATE DATABASE shop" || return 1
  real_psql "$port" <<'SQL' || return 1
CREATE TABLE products (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL);
INSERT INTO products (name, price) VALUES ('teapot', 18.50), ('cup', 4.20), ('saucer', 3.10);
SQL
}

# real_start_nginx NAME DIR PORT [TLS_PORT]: nginx from DIR serving "Shop"
# on PORT (and on TLS_PORT with TLS and HTTP/2, a second server block, with
# REAL_CERT and REAL_KEY), each server block including the holding-page
# snippet DIR/holding-page.conf first (in the http block, where nginx
# refuses it, when REAL_SNIPPET_AT=http; nowhere when REAL_SNIPPET_AT=none)
# and setting HSTS and CSP headers. The holding page's flag lives in
# DIR/flags. nginx also reads DIR/conf.d/*.conf at http level, where a test
# can break something unrelated.
real_start_nginx() {
  local name=$1 dir=$2 port=$3 tls_port=${4:-} at=${REAL_SNIPPET_AT:-server}
  local in_http='' in_server='' tls=''
  mkdir -p "$dir/www" "$dir/tmp" "$dir/flags" "$dir/conf.d"
  echo "<h1>Shop</h1><p>Welcome, served by $name.</p>" >"$dir/www/index.html"
  echo "<h1>Maintenance in progress</h1><p>The shop is back in a minute.</p>" >"$dir/holding.html"
  # The pack writes the snippet when its agent starts; nginx needs the file
  # to exist before.
  echo "# choreo's holding page: not installed yet" >"$dir/holding-page.conf"
  case $at in
    http) in_http="include $dir/holding-page.conf;" ;;
    server) in_server="include $dir/holding-page.conf;" ;;
  esac
  if [ -n "$tls_port" ]; then
    tls="
    server {
        listen 127.0.0.1:$tls_port ssl http2;
        server_name localhost;
        ssl_certificate $REAL_CERT;
        ssl_certificate_key $REAL_KEY;
        $in_server
        add_header Strict-Transport-Security \"max-age=63072000\" always;
        root $dir/www;
        index index.html;
    }"
  fi
  cat >"$dir/nginx.conf" <<CONF
# $name: nginx from $dir, on 127.0.0.1:$port${tls_port:+ and $tls_port (TLS, HTTP/2)}.
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
${REAL_WORKER_USER:+user $REAL_WORKER_USER $REAL_WORKER_GROUP;}
events { worker_connections 512; }
http {
    access_log off;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    types { text/html html; }
    default_type application/octet-stream;
    keepalive_requests 100000;
    include $dir/conf.d/*.conf;
    $in_http
    server {
        listen 127.0.0.1:$port;
        $in_server
        add_header Strict-Transport-Security "max-age=63072000" always;
        add_header Content-Security-Policy "default-src 'self'" always;
        root $dir/www;
        index index.html;
        location = /healthz { default_type text/plain; return 200 "ok\\n"; }
    }$tls
}
CONF
  nginx -p "$dir/" -c "$dir/nginx.conf" -e "$dir/error.log" 2>>"$dir/error.log" &
  REAL_PIDS+=($!)
  real_until 10 "$name (nginx) on port $port" curl -fsS -o /dev/null "http://127.0.0.1:$port/"
}

# real_make_cert DIR: a self-signed certificate for localhost in DIR;
# sets REAL_CERT and REAL_KEY.
real_make_cert() {
  mkdir -p "$1"
  openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$1/key.pem" -out "$1/cert.pem" >/dev/null 2>&1 || return 1
  chmod 0644 "$1/key.pem" "$1/cert.pem"
  REAL_CERT=$1/cert.pem REAL_KEY=$1/key.pem
}

# The options that point nginx at DIR's prefix, configuration and log: the
# holding-page pack's `nginx` var is "nginx" followed by these.
real_nginx_args() {
  echo "-p $1/ -c $1/nginx.conf -e $1/error.log"
}

# real_start_haproxy DIR PORT NAME:PORT...: HAProxy on 127.0.0.1:PORT in
# front of the webservers, runtime API on DIR/admin.sock. Its health check
# counts the holding page's 503 as up.
real_start_haproxy() {
  local dir=$1 port=$2 s
  shift 2
  mkdir -p "$dir"
  {
    cat <<CONF
global
    stats socket $dir/admin.sock mode 600 level admin
    maxconn 512
${REAL_WORKER_USER:+    user $REAL_WORKER_USER
    group $REAL_WORKER_GROUP}

defaults
    mode http
    timeout connect 2s
    timeout client 10s
    timeout server 10s
    retries 3
    option redispatch

frontend shop
    bind 127.0.0.1:$port
    default_backend web

backend web
    balance roundrobin
    option httpchk GET /
    # 503 is the holding page: the server is up, the site is in maintenance
    http-check expect status 200,503
    default-server check inter 250ms fall 2 rise 2
CONF
    for s in "$@"; do echo "    server ${s%%:*} 127.0.0.1:${s#*:}"; done
  } >"$dir/haproxy.cfg"
  # Master-worker mode, as Debian's unit runs it: SIGUSR2 to the master
  # reloads (real_reload_haproxy).
  haproxy -W -db -f "$dir/haproxy.cfg" >>"$dir/haproxy.log" 2>&1 &
  REAL_HAPROXY_PID=$!
  REAL_PIDS+=($!)
  real_until 10 "haproxy's socket" test -S "$dir/admin.sock" &&
    real_until 10 "haproxy on port $port" curl -fsS -o /dev/null "http://127.0.0.1:$port/"
}

# real_reload_haproxy DIR: reload HAProxy as `systemctl reload haproxy`
# does (SIGUSR2 to the master: a new worker reads the configuration again,
# the old one finishes its connections); returns once the new worker
# answers on the runtime API.
real_reload_haproxy() {
  local old
  old=$(real_haproxy "$1" "show info" | sed -n 's/^Pid: *//p')
  kill -USR2 "$REAL_HAPROXY_PID" || return 1
  real_until 10 "a new HAProxy worker" real_haproxy_pid_is_not "$1" "$old"
}
real_haproxy_pid_is_not() {
  local p
  p=$(real_haproxy "$1" "show info" | sed -n 's/^Pid: *//p')
  [ -n "$p" ] && [ "$p" != "$2" ]
}

# real_haproxy DIR COMMAND: one runtime API command, its answer.
real_haproxy() {
  printf '%s\n' "$2" | socat -t 2 - "UNIX-CONNECT:$1/admin.sock"
}

# real_server_stat DIR SERVER FIELD: a field of `show stat` for
# web/SERVER (status: UP, DOWN, DRAIN, MAINT; chkdown: UP->DOWN transitions).
real_server_stat() {
  real_haproxy "$1" "show stat" | awk -F, -v s="$2" -v f="$3" '
    NR == 1 { sub(/^# /, ""); for (i = 1; i <= NF; i++) col[$i] = i; next }
    $1 == "web" && $2 == s { print $col[f] }'
}

# real_render TEMPLATE OUT: a configuration of this directory with its
# @PLACEHOLDERS@ filled in.
real_render() {
  sed -e "s|@WORK@|$REAL_WORK|g" -e "s|@BEHAVIOURS@|$REAL_BEHAVIOURS|g" \
      -e "s|@DB1_PORT@|$REAL_DB1_PORT|g" -e "s|@WEB1_PORT@|$REAL_WEB1_PORT|g" \
      -e "s|@WEB2_PORT@|$REAL_WEB2_PORT|g" -e "s|@LB1_PORT@|$REAL_LB1_PORT|g" \
      -e "s|@PG_PORT@|$REAL_PG_PORT|g" "$1" >"$2"
}

# real_start_agent NAME: the agent of WORK/NAME.yaml, logging to WORK/NAME.log.
real_start_agent() {
  "$REAL_CHOREO" agent -c "$REAL_WORK/$1.yaml" >>"$REAL_WORK/$1.log" 2>&1 &
  REAL_PIDS+=($!)
}

real_members() {
  [ "$("$REAL_CHOREO" status --json --socket "$REAL_WORK/$1.sock" | jq '.peers | length')" = "$2" ]
}

# real_start_shop WORK CHOREO: PostgreSQL, nginx web1 and web2, HAProxy,
# and the agents db1, web1, web2 and lb1, all in WORK; returns once every
# agent sees the other three and both webservers' holding-page snippets are
# installed. Sets REAL_HTTP_PORT (HAProxy), REAL_PG_PORT, REAL_NGINX1_PORT,
# REAL_NGINX2_PORT, REAL_TLS1_PORT, REAL_TLS2_PORT (TLS and HTTP/2) and the
# agents' REAL_*_PORT.
real_start_shop() {
  REAL_WORK=$1 REAL_CHOREO=$2
  local n
  chmod 0711 "$REAL_WORK" # nginx's workers and postgres pass through it
  REAL_PG_PORT=$(real_free_port) && REAL_NGINX1_PORT=$(real_free_port) &&
    REAL_NGINX2_PORT=$(real_free_port) && REAL_HTTP_PORT=$(real_free_port) &&
    REAL_DB1_PORT=$(real_free_port) && REAL_WEB1_PORT=$(real_free_port) &&
    REAL_WEB2_PORT=$(real_free_port) && REAL_LB1_PORT=$(real_free_port) &&
    REAL_TLS1_PORT=$(real_free_port) && REAL_TLS2_PORT=$(real_free_port) || return 1
  real_make_cert "$REAL_WORK/tls" || return 1
  real_start_postgres "$REAL_WORK/pg" "$REAL_PG_PORT" || return 1
  real_start_nginx web1 "$REAL_WORK/web1" "$REAL_NGINX1_PORT" "$REAL_TLS1_PORT" || return 1
  real_start_nginx web2 "$REAL_WORK/web2" "$REAL_NGINX2_PORT" "$REAL_TLS2_PORT" || return 1
  real_start_haproxy "$REAL_WORK/lb1" "$REAL_HTTP_PORT" \
    "web1:$REAL_NGINX1_PORT" "web2:$REAL_NGINX2_PORT" || return 1
  for n in db1 web1 web2 lb1; do
    real_render "$REAL_HERE/$n.yaml" "$REAL_WORK/$n.yaml"
    real_start_agent "$n"
  done
  for n in db1 web1 web2 lb1; do
    real_until 10 "$n sees the three others" real_members "$n" 3 || return 1
  done
  for n in web1 web2; do
    # installed, nginx reloaded, the include checked: the last line of it
    real_until 10 "$n's holding-page snippet installed" grep -q "holding-page: .* is included in" \
      "$REAL_WORK/$n.log" || return 1
  done
}

# real_stop: everything, last started first (the agents before the
# servers, so that no behaviour reacts to a server going away).
real_stop() {
  local i p
  for ((i = ${#REAL_PIDS[@]} - 1; i >= 0; i--)); do
    p=${REAL_PIDS[$i]}
    { kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; } || true
  done
  REAL_PIDS=()
  for p in "${REAL_PIDFILES[@]}"; do
    [ ! -s "$p" ] || kill "$(cat "$p")" 2>/dev/null || true
  done
  REAL_PIDFILES=()
  if [ -n "$REAL_PGDATA" ] && [ -f "$REAL_PGDATA/postmaster.pid" ]; then
    real_as_pg "$REAL_PGBIN/pg_ctl" -D "$REAL_PGDATA" -m immediate stop >/dev/null 2>&1 || true
  fi
  REAL_PGDATA=
}

# real_start_apache NAME DIR PORT: Apache httpd from DIR serving "Shop" on
# PORT, its virtual host including the holding-page snippet
# DIR/holding-page.conf (not at all when REAL_SNIPPET_AT=none) and setting
# HSTS; flag in DIR/flags. The pack's `apache` var is "apache2" followed by
# real_apache_args DIR.
real_start_apache() {
  local name=$1 dir=$2 port=$3 m inc="Include $2/holding-page.conf"
  [ "${REAL_SNIPPET_AT:-server}" != none ] || inc=''
  mkdir -p "$dir/www" "$dir/flags" "$dir/run"
  echo "<h1>Shop</h1><p>Welcome, served by $name.</p>" >"$dir/www/index.html"
  echo "<h1>Maintenance in progress</h1><p>The shop is back in a minute.</p>" >"$dir/holding.html"
  echo "# choreo's holding page: not installed yet" >"$dir/holding-page.conf"
  {
    echo "# $name: Apache httpd from $dir, on 127.0.0.1:$port."
    for m in mpm_event authz_core rewrite alias headers dir mime; do
      echo "LoadModule ${m}_module /usr/lib/apache2/modules/mod_$m.so"
    done
    cat <<CONF
ServerRoot $dir
ServerName localhost
DefaultRuntimeDir $dir/run
PidFile $dir/run/httpd.pid
ErrorLog $dir/error.log
LogLevel warn
Listen 127.0.0.1:$port
${REAL_WORKER_USER:+User $REAL_WORKER_USER
Group $REAL_WORKER_GROUP}
TypesConfig /etc/mime.types
DocumentRoot $dir/www
DirectoryIndex index.html
<Directory />
    Require all denied
</Directory>
<Directory $dir/www>
    Require all granted
</Directory>
<VirtualHost 127.0.0.1:$port>
    $inc
    Header always set Strict-Transport-Security "max-age=63072000"
</VirtualHost>
CONF
  } >"$dir/httpd.conf"
  apache2 $(real_apache_args "$dir") -DFOREGROUND 2>>"$dir/error.log" &
  REAL_PIDS+=($!)
  real_until 10 "$name (Apache) on port $port" curl -fsS -o /dev/null "http://127.0.0.1:$port/"
}
real_apache_args() {
  echo "-d $1 -f $1/httpd.conf"
}

# real_start_pgbouncer DIR PORT PG_PORT: PgBouncer on 127.0.0.1:PORT in
# front of the shop database on PG_PORT, transaction pooling, trust
# authentication for the users postgres (also its admin) and shop.
real_start_pgbouncer() {
  local dir=$1 port=$2 pg=$3
  mkdir -p "$dir"
  printf '"postgres" ""\n"shop" ""\n' >"$dir/users.txt"
  cat >"$dir/pgbouncer.ini" <<CONF
[databases]
shop = host=127.0.0.1 port=$pg dbname=shop user=postgres
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $port
unix_socket_dir =
auth_type = trust
auth_file = $dir/users.txt
admin_users = postgres
pool_mode = transaction
logfile = $dir/pgbouncer.log
pidfile = $dir/pgbouncer.pid
CONF
  [ "$(id -u)" != 0 ] || chown -R "$REAL_PGUSER" "$dir"
  # runuser does not pass a SIGTERM on: real_stop kills PgBouncer by its
  # pid file.
  real_as_pg pgbouncer -q "$dir/pgbouncer.ini" >>"$dir/pgbouncer.err" 2>&1 &
  REAL_PIDS+=($!)
  REAL_PIDFILES+=("$dir/pgbouncer.pid")
  real_until 10 "PgBouncer on port $port" psql -X -q -h 127.0.0.1 -p "$port" -U postgres -d pgbouncer -c "SHOW VERSION"
}

# real_quiet_debian_service NAME: Debian's packages of apache2 and
# pgbouncer start and enable their own service on installation; the tests
# run their own instances, so stop and disable the system's (as root; with
# systemd, or its init script without).
real_quiet_debian_service() {
  [ "$(id -u)" = 0 ] || return 0
  if [ -d /run/systemd/system ]; then
    if systemctl is-active --quiet "$1" 2>/dev/null; then
      systemctl stop "$1" && systemctl disable --quiet "$1"
    fi
  elif [ -x "/etc/init.d/$1" ] && "/etc/init.d/$1" status >/dev/null 2>&1; then
    "/etc/init.d/$1" stop >/dev/null 2>&1
    command -v update-rc.d >/dev/null && update-rc.d "$1" disable >/dev/null 2>&1
  fi
  return 0
}
