# Differential runner for Ruby's mysql2 gem (Debian's ruby-mysql2, on MariaDB Connector/C).
#
#   ruby runner.rb --lib mysql2 --scenarios FILE --port P --admin-port A [--tls-ca CA]
#
# Prints one JSON transcript (see ../common.py for the format) on stdout. Connections use
# `encoding: 'utf8mb4'` (the gem's default is utf8mb3, which cannot carry emoji). Queries run with
# `cast: true` (the gem's default), so values arrive as Integer, Float, BigDecimal, Time, DateTime,
# Date or String. change_user and reset_connection are used if the gem has them (0.5.3 has neither);
# it has no server-side cursor.
require 'bigdecimal'
require 'date'
require 'digest'
require 'json'
require 'mysql2'
require 'tmpdir'

HASH_OVER = 2048

class Unsupported < StandardError; end

def parse_args
  a = { 'host' => '127.0.0.1', 'user' => 'app', 'password' => 'app_pass', 'database' => 'app',
        'admin-user' => 'admin', 'admin-password' => 'admin_pass', 'tls-ca' => '', 'only' => '' }
  ARGV.each_slice(2) { |k, v| a[k.sub(/\A--/, '')] = v }
  a
end

def hashed(kind, bytes)
  [kind, "len=#{bytes.bytesize} sha256=#{Digest::SHA256.hexdigest(bytes)}"]
end

# A string for the transcript: itself if it is valid text, else its bytes in hex.
def text(s)
  return s unless s.is_a?(String)
  return s.encode('UTF-8') if s.encoding != Encoding::BINARY && s.valid_encoding?
  return s.dup.force_encoding('UTF-8') if s.b =~ /\A[\x20-\x7e]*\z/n
  "hex:#{s.unpack1('H*')}"
end

# A value as the application received it: [Ruby class (and a String's encoding), canonical text].
def enc(v)
  case v
  when nil then nil
  when String
    kind = "String/#{v.encoding}"
    return hashed(kind, v.b) if v.bytesize > HASH_OVER
    kind += '(invalid)' unless v.valid_encoding?
    [kind, text(v)]
  when Integer, TrueClass, FalseClass then [v.class.name, v.to_s]
  when Float then ['Float', v.inspect]
  when BigDecimal then ['BigDecimal', v.to_s('F')]
  when Time, DateTime then [v.class.name, v.strftime('%Y-%m-%d %H:%M:%S.%N %z')]
  when Date then ['Date', v.iso8601]
  else [v.class.name, v.inspect]
  end
end

def big_param(p)
  p.is_a?(Hash) && p.key?('repeat') ? p['repeat'] * p['times'] : p
end

# ------------------------------------------------------------------ the driver

class Driver
  attr_reader :features

  def initialize(args)
    @a = args
    @features = %w[multi_statements multi_results local_infile tls compress prepared]
    @features << 'change_user' if Mysql2::Client.method_defined?(:change_user)
    @features << 'reset_connection' if Mysql2::Client.method_defined?(:reset_connection)
  end

  def connect(o)
    flags = 0
    flags |= Mysql2::Client::MULTI_STATEMENTS if o['multi_statements']
    flags |= Mysql2::Client::COMPRESS if o['compress']
    opts = { host: @a['host'], port: @a['port'].to_i, username: @a['user'], password: @a['password'],
             database: @a['database'], connect_timeout: 10, read_timeout: 60, flags: flags,
             local_infile: !!o['local_infile'], encoding: 'utf8mb4' }
    # ssl_mode needs libmysqlclient 5.7.11+ (the gem warns and ignores it on Connector/C);
    # sslverify sets CLIENT_SSL_VERIFY_SERVER_CERT: the CA and the host name are checked.
    opts.update(sslca: @a['tls-ca'], sslverify: true) if o['tls']
    @c = Mysql2::Client.new(**opts)
    # Not thread_id: it differs between any two connections.
    { 'server_info' => @c.server_info.transform_keys(&:to_s), 'encoding' => @c.encoding.to_s,
      'ssl' => !@c.ssl_cipher.nil? }
  end

  def server_error(e)
    return nil unless e.is_a?(Mysql2::Error) && e.error_number.to_i.positive? && e.error_number < 2000

    { 'code' => e.error_number, 'sqlstate' => e.sql_state, 'message' => text(e.message) }
  end

  def describe(e)
    server_error(e) || { 'exception' => text("#{e.class}: #{e.message}")[0, 500],
                         'code' => e.respond_to?(:error_number) ? e.error_number : nil }
  end

  # What the client knows after a statement (for a result set too: the warning count).
  def ok_info
    { 'affected_rows' => @c.affected_rows, 'last_id' => @c.last_id, 'warning_count' => @c.warning_count,
      'info' => @c.query_info_string && text(@c.query_info_string) }
  end

  def record(res, out)
    if res
      rows = res.map { |r| r.map { |v| enc(v) } }
      out << { 'fields' => res.fields.map { |f| text(f) }, 'count' => res.count, 'rows' => rows,
               'server_flags' => res.server_flags&.transform_keys(&:to_s), 'warning_count' => @c.warning_count }
    else
      out << ok_info
    end
  end

  def text_query(sql, params, out)
    params.each do |p|
      lit = p.nil? ? 'NULL' : p.is_a?(Numeric) ? p.to_s : "'#{@c.escape(p.to_s)}'"
      sql = sql.sub('?') { lit }
    end
    record(@c.query(sql, as: :array, cast: true), out)
    while @c.next_result
      record(@c.store_result, out)
    end
  end

  def prepared(sql, params, out)
    st = @c.prepare(sql)
    begin
      res = st.execute(*params, as: :array, cast: true)
      item = { 'param_count' => st.param_count, 'field_count' => st.field_count,
               'fields' => st.fields&.map { |f| text(f) } }
      if res
        item['rows'] = res.map { |r| r.map { |v| enc(v) } }
        item['count'] = res.count
      else
        item.update('affected_rows' => st.affected_rows, 'last_id' => st.last_id)
      end
      item['warning_count'] = @c.warning_count
      out << item
    ensure
      st.close
    end
  end

  def change_user(user, password, db)
    raise Unsupported, 'no change_user' unless @c.respond_to?(:change_user)

    @c.change_user(user, password, db)
    { 'changed' => true }
  end

  def reset
    raise Unsupported, 'no reset_connection' unless @c.respond_to?(:reset_connection)

    { 'reset' => @c.reset_connection }
  end

  def admin(sql)
    c = Mysql2::Client.new(host: @a['host'], port: @a['admin-port'].to_i, username: @a['admin-user'],
                           password: @a['admin-password'])
    c.query(sql)
  ensure
    c&.close
  end

  def close
    @c&.close
  rescue StandardError
    nil
  ensure
    @c = nil
  end
end

# ------------------------------------------------------------------ loop

args = parse_args
only = args['only'].split(',').reject(&:empty?)
scenarios = JSON.parse(File.read(args['scenarios'], encoding: 'UTF-8'))['scenarios']
tmp = Dir.mktmpdir('rwproxy-diff-')
version = "mysql2 #{Mysql2::VERSION}, Ruby #{RUBY_VERSION}, Connector/C #{Mysql2::Client.info[:version]}"
result = { 'library' => 'ruby-mysql2', 'version' => version, 'scenarios' => {} }
scenarios.each do |scen|
  next if !only.empty? && !only.include?(scen['name'])

  drv = Driver.new(args)
  connect = scen['connect'] || {}
  missing = (scen['needs'] || []).reject { |n| drv.features.include?(n) }
  connect.each { |k, v| missing << k if v && !drv.features.include?(k) && !missing.include?(k) }
  unless missing.empty?
    result['scenarios'][scen['name']] = { 'unsupported' => "library has no #{missing.join(', ')}" }
    next
  end
  steps = []
  begin
    steps << { 'connect' => drv.connect(connect) }
  rescue StandardError => e
    result['scenarios'][scen['name']] = { 'connect_error' => drv.describe(e) }
    next
  end
  scen['steps'].each do |step|
    mode = step['mode'] || 'text'
    rec = { 'mode' => mode }
    rec['sql'] = step['sql'][0, 80] if step['sql']
    results = rec['results'] = []
    begin
      params = (step['params'] || []).map { |p| big_param(p) }
      sql = step['sql'] || ''
      mode = 'prepared' if %w[prepared_or_text call].include?(mode)
      case mode
      when 'text' then drv.text_query(sql, params, results)
      when 'prepared' then drv.prepared(sql, params, results)
      when 'cursor' then raise Unsupported, 'library has no cursor'
      when 'load_local'
        file = File.join(tmp, "#{scen['name']}-#{steps.size}.csv")
        File.write(file, step['data'], encoding: 'UTF-8')
        drv.text_query(sql.gsub('{file}', file), [], results)
      when 'admin' then drv.admin(sql)
      when 'change_user'
        user = step['user'] == '$app' ? args['user'] : step['user']
        pw = step['password'] == '$app' ? args['password'] : step['password']
        results << drv.change_user(user, pw, step['database'])
      when 'reset_connection' then results << drv.reset
      else raise "unknown mode #{mode}"
      end
    rescue Unsupported => e
      rec['skipped'] = e.message
    rescue StandardError => e
      rec['error'] = drv.describe(e)
      if rec['error'].key?('exception')
        # The connection is in an unknown state: start a new one for the next steps.
        drv.close
        begin
          drv.connect(connect)
          rec['reconnected'] = true
        rescue StandardError => e2
          rec['reconnect_error'] = drv.describe(e2)
          steps << rec
          break
        end
      end
    end
    steps << rec
  end
  drv.close
  result['scenarios'][scen['name']] = { 'steps' => steps }
end
$stdout.write(JSON.generate(result), "\n")
