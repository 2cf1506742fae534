// The runtime check shared by the entry points. It avoids any syntax newer than Node.js 14 so that it can speak
// on old runtimes too.
const REQUIRED_MAJOR = 24

/**
 * Returns true when this Node.js can run CloudTaser; otherwise prints what to do and sets a failing exit code.
 */
export const requireNode24 = (program) => {
  const major = Number(process.versions.node.split(".")[0])
  if (major >= REQUIRED_MAJOR) return true
  process.stderr.write(
    `${program}: needs Node.js ${REQUIRED_MAJOR} or later, but this is Node.js ${process.version}.\n` +
      `  From a clone of the project, run \`npm ci\` and then \`npx ${program} ...\`: npm brings Node.js ` +
      `${REQUIRED_MAJOR} as a dev dependency.\n` +
      `  Elsewhere, install Node.js ${REQUIRED_MAJOR} LTS and run ${program} with it.\n`
  )
  process.exitCode = 1
  return false
}
