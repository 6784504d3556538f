#!/usr/bin/env node
import { configTableMarkdown } from '@blixard/config';
import { CliError, describeError } from './errors';
import { migrateCommand } from './migrate-command';
import { up } from './up';
import { keysCommand } from './keys-command';

const USAGE = `Usage: blixard <command> [options]

Commands:
  migrate                  create the database if missing and apply pending migrations (DATABASE_URL)
  config                   print the configuration table (every environment variable, default, meaning)
  keys create --tenant <t> --scopes <s1,s2> [--name <n>] [--expires-in <30d>]
                           make an API key (DATABASE_URL); its token is printed this once
  keys list [--tenant <t>] | keys revoke <id>
                           list API keys (never their secrets), or revoke one at once
  up [--once] [--no-infra] start Postgres, NATS and every service on this machine, run a demo job,
                           and keep running until Ctrl-C
      --once               stop everything again right after the demo job (exit 0 if it completed)
      --no-infra           do not use Docker or start Postgres/NATS; expect them at DATABASE_URL/NATS_URL
  help, --help             show this text

With a running Docker engine, \`up\` uses docker compose (gateway on http://127.0.0.1:8080).
Otherwise it starts the services from apps/*/dist (run \`pnpm run build\` first, or \`pnpm run up\`)
on GATEWAY_PORT, SCHEDULER_PORT, REGISTRY_PORT and EXECUTOR_PORT (+1 for the mock executor).`;

/** A command line the program cannot act on: usage on stderr, exit code 2 (the shell convention). */
function usageError(message: string): number {
  console.error(`${message}\n\n${USAGE}`);
  return 2;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  if (command === 'help' || command === '--help' || command === '-h') {
    console.log(USAGE);
    return 0;
  }
  switch (command) {
    case 'migrate':
      if (args.length > 0) return usageError(`migrate takes no arguments: ${args.join(' ')}`);
      return migrateCommand();
    case 'config':
      if (args.length > 0) return usageError(`config takes no arguments: ${args.join(' ')}`);
      console.log(configTableMarkdown());
      return 0;
    case 'keys':
      return keysCommand(args);
    case 'up': {
      if (args.includes('--help') || args.includes('-h')) {
        console.log(USAGE);
        return 0;
      }
      const unknown = args.filter((a) => a !== '--once' && a !== '--no-infra');
      if (unknown.length > 0) return usageError(`unknown option(s) for up: ${unknown.join(' ')}`);
      return up({ once: args.includes('--once'), infra: !args.includes('--no-infra') });
    }
    case undefined:
      return usageError('no command given');
    default:
      return usageError(`unknown command: ${command}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    // A CliError (or ConfigError) is the user's to fix: its message is enough; anything else is a bug.
    const known = err instanceof CliError || (err instanceof Error && err.name === 'ConfigError');
    console.error(known ? describeError(err) : err);
    process.exit(1);
  },
);
