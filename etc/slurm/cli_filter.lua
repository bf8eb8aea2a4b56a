-- cli_filter.lua — ferry's part of Slurm's cli_filter/lua (ferry-slurm(7), SETTING IT UP).
--
-- A job submitted with --ferry-checkpoint (ferry's SPANK plugin) gets, unless it says otherwise,
--   --signal=B:USR1@N  so that Slurm signals the batch shell, where 'ferry run' is, when the job is
--                      preempted (with SlurmctldParameters=preempt_send_user_signal): at
--                      preemption Slurm sends SIGTERM to the job's steps only, never to the batch
--                      shell. N is half the grace time: at the time limit the signal is a
--                      second trigger of ferry's own checkpoint (the grace before the limit);
--                      whichever comes first stops the job;
--   --requeue          so that Slurm may run it again after its node died (and ferry may requeue
--                      it) whatever the site's JobRequeue.
-- It runs in sbatch and salloc, as the user, like the plugin's own check; it reads no file.
-- Use it as /etc/slurm/cli_filter.lua (next to slurm.conf) with CliFilterPlugins=cli_filter/lua,
-- or call ferry_pre_submit(options) from the slurm_cli_pre_submit of a cli_filter.lua of your own.

-- ferry.conf's 'slurm grace time', in seconds: keep the two the same
local ferry_grace = 120

-- seconds of a DURATION of ferry's (90, 90s, 5m, 1h30m); nil when it is not one
local function ferry_seconds(s)
	if s == nil or not string.match(s, "^[0-9hms]+$") then
		return nil
	end
	local total, rest = 0, s
	while rest ~= "" do
		local n, u, tail = string.match(rest, "^([0-9]+)([hms]?)(.*)$")
		if n == nil then
			return nil
		end
		local unit = ({h = 3600, m = 60, s = 1, [""] = 1})[u]
		total = total + tonumber(n) * unit
		rest = tail
	end
	return total
end

function ferry_pre_submit(options)
	local spank = options["spank"]
	local spec = spank and spank["ferry"] and spank["ferry"]["ferry-checkpoint"]
	if spec == nil or options["type"] ~= "sbatch" then
		return slurm.SUCCESS
	end
	local grace = ferry_seconds(string.match("," .. spec, ",grace=([^,]*)")) or ferry_grace
	-- unset, Slurm shows it as signal 0 ("0@0")
	local signal = options["signal"]
	if signal == nil or signal == "" or string.match(signal, "^0[^0-9]") or signal == "0" then
		options["signal"] = "B:USR1@" .. math.max(1, math.floor(grace / 2))
	end
	if options["requeue"] == "unset" then
		options["requeue"] = "set"
	end
	return slurm.SUCCESS
end

function slurm_cli_setup_defaults(options, early_pass)
	return slurm.SUCCESS
end

function slurm_cli_pre_submit(options, pack_offset)
	return ferry_pre_submit(options)
end

function slurm_cli_post_submit(offset, job_id, step_id)
	return slurm.SUCCESS
end
