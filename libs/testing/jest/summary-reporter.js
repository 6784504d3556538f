// Makes a run fail loudly when it proves nothing: a skipped, pending or to-do test, or a run that
// executed no test at all, is an error. Prints the plain closing line CI reads:
// "N passed, N failed, N skipped".
class SummaryReporter {
  constructor() {
    this.error = undefined;
  }

  onRunComplete(_contexts, results) {
    const passed = results.numPassedTests;
    const failed = results.numFailedTests;
    const skipped = results.numPendingTests + results.numTodoTests;
    const problems = [];
    if (results.numTotalTests === 0) problems.push('no test ran');
    if (skipped > 0) problems.push(`${skipped} test(s) skipped or marked todo: a skipped test proves nothing`);
    if (results.numFailedTestSuites > 0 && failed === 0) problems.push(`${results.numFailedTestSuites} test file(s) failed to run`);
    if (problems.length > 0) {
      this.error = new Error(problems.join('; '));
      process.stdout.write(`\nsummary-reporter: ${problems.join('; ')}\n`);
    }
    process.stdout.write(`\n${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }

  getLastError() {
    return this.error;
  }
}

module.exports = SummaryReporter;
