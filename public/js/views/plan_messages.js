// Refusals on the plan page in words a person uses: the one way the console
// says a problem (dom.js problemBox), under the name the plan modules use.

export { problemBox as sayProblem, sentence } from '../dom.js';
