/**
 * Given-name equivalences: each group is one formal name and the short forms
 * and diminutives registration clerks meet for it (US English). Data, not a
 * metric: a pair of given names in one group compares at level `nickname`.
 * A name in several groups (e.g. "al") is equivalent to the names of each.
 */
const GROUPS: readonly (readonly string[])[] = [
  ['abigail', 'abby', 'abbie', 'gail'],
  ['abraham', 'abe', 'bram'],
  ['albert', 'al', 'bert', 'bertie'],
  ['alexander', 'alex', 'al', 'sandy', 'xander', 'alec', 'lex'],
  ['alexandra', 'alex', 'alexa', 'sandra', 'sandy', 'lexi', 'alexis'],
  ['alfred', 'al', 'alf', 'fred', 'freddie'],
  ['allison', 'ali', 'allie', 'alison'],
  ['amanda', 'mandy', 'manda'],
  ['andrew', 'andy', 'drew'],
  ['angela', 'angie', 'angelina'],
  ['anthony', 'tony', 'ant'],
  ['antonio', 'tony', 'toni'],
  ['arthur', 'art', 'artie'],
  ['barbara', 'barb', 'barbie', 'babs'],
  ['benjamin', 'ben', 'benny', 'benji'],
  ['bernard', 'bernie', 'barney'],
  ['beverly', 'bev'],
  ['bradley', 'brad'],
  ['brian', 'bryan'],
  ['camille', 'cami', 'millie'],
  ['caroline', 'carol', 'carrie', 'lina'],
  ['catherine', 'cathy', 'cat', 'kate', 'katie', 'kathy', 'katherine', 'kathryn', 'kay', 'kitty'],
  ['charles', 'charlie', 'chuck', 'chas', 'chaz', 'chip'],
  ['charlotte', 'charlie', 'lottie', 'lotte'],
  ['christina', 'chris', 'tina', 'christine', 'kristina', 'kris', 'chrissy'],
  ['christopher', 'chris', 'kit', 'topher', 'cris'],
  ['clifford', 'cliff'],
  ['cynthia', 'cindy', 'cyndi'],
  ['daniel', 'dan', 'danny'],
  ['danielle', 'dani', 'elle'],
  ['david', 'dave', 'davey', 'davy'],
  ['deborah', 'debbie', 'deb', 'debra', 'debby'],
  ['dennis', 'denny'],
  ['dominic', 'dom', 'nick'],
  ['donald', 'don', 'donnie', 'donny'],
  ['dorothy', 'dot', 'dottie', 'dolly', 'dora'],
  ['douglas', 'doug'],
  ['edward', 'ed', 'eddie', 'ned', 'ted', 'teddy', 'eddy'],
  ['edwin', 'ed', 'eddie', 'win'],
  ['eleanor', 'ellie', 'nell', 'nora', 'elle', 'ella'],
  ['elizabeth', 'liz', 'lizzie', 'beth', 'betty', 'betsy', 'eliza', 'libby', 'elsie', 'bess', 'lisa', 'liza'],
  ['emily', 'em', 'emmy', 'millie'],
  ['eugene', 'gene'],
  ['frances', 'fran', 'frannie', 'frankie'],
  ['francis', 'frank', 'frankie', 'fran'],
  ['franklin', 'frank', 'frankie'],
  ['frederick', 'fred', 'freddie', 'freddy', 'rick'],
  ['gabriel', 'gabe'],
  ['gabrielle', 'gabby', 'gabi', 'brie'],
  ['gerald', 'gerry', 'jerry'],
  ['gregory', 'greg'],
  ['harold', 'harry', 'hal'],
  ['henry', 'hank', 'harry', 'hal'],
  ['herbert', 'herb', 'bert'],
  ['isabella', 'bella', 'izzy', 'isabel', 'isabelle'],
  ['jacob', 'jake', 'jack', 'jay'],
  ['james', 'jim', 'jimmy', 'jamie', 'jimbo'],
  ['janet', 'jan', 'jenny'],
  ['jeffrey', 'jeff', 'geoffrey', 'geoff'],
  ['jennifer', 'jen', 'jenny', 'jenn', 'jenna'],
  ['jessica', 'jess', 'jessie'],
  ['john', 'jack', 'johnny', 'jon', 'jonny'],
  ['jonathan', 'jon', 'jonny', 'nathan', 'john'],
  ['joseph', 'joe', 'joey', 'jo'],
  ['josephine', 'jo', 'josie', 'jody'],
  ['joshua', 'josh'],
  ['judith', 'judy', 'jude'],
  ['julia', 'julie', 'jules'],
  ['katherine', 'kate', 'katie', 'kathy', 'kat', 'kay', 'kit'],
  ['kenneth', 'ken', 'kenny'],
  ['kimberly', 'kim', 'kimmy'],
  ['lawrence', 'larry', 'laurie', 'lance'],
  ['leonard', 'leo', 'len', 'lenny'],
  ['louis', 'lou', 'louie'],
  ['margaret', 'maggie', 'meg', 'peggy', 'marge', 'margie', 'madge', 'greta', 'daisy', 'molly', 'peg'],
  ['martha', 'marty', 'mattie'],
  ['martin', 'marty'],
  ['mary', 'molly', 'polly', 'mae', 'mamie'],
  ['matthew', 'matt', 'matty'],
  ['melissa', 'mel', 'missy', 'lissa'],
  ['michael', 'mike', 'mikey', 'mick', 'mickey'],
  ['michelle', 'shelly', 'mich', 'chelle'],
  ['nathaniel', 'nate', 'nat', 'nathan'],
  ['nicholas', 'nick', 'nicky', 'nico', 'cole'],
  ['nicole', 'nikki', 'nicky', 'cole'],
  ['olivia', 'liv', 'livvy', 'ollie'],
  ['oliver', 'ollie', 'ol'],
  ['pamela', 'pam', 'pammy'],
  ['patricia', 'pat', 'patty', 'patsy', 'tricia', 'trish'],
  ['patrick', 'pat', 'paddy', 'rick'],
  ['peter', 'pete'],
  ['philip', 'phil', 'pip', 'phillip'],
  ['rebecca', 'becky', 'becca', 'reba'],
  ['raymond', 'ray'],
  ['richard', 'rich', 'rick', 'ricky', 'dick', 'richie'],
  ['robert', 'rob', 'bob', 'bobby', 'robbie', 'bert', 'robby'],
  ['roberta', 'bobbie', 'robin', 'bertie'],
  ['ronald', 'ron', 'ronnie', 'ronny'],
  ['rosemary', 'rose', 'rosie'],
  ['samantha', 'sam', 'sammy'],
  ['samuel', 'sam', 'sammy'],
  ['sarah', 'sally', 'sadie', 'sara'],
  ['stephanie', 'steph', 'stevie'],
  ['stephen', 'steve', 'stevie', 'steven'],
  ['susan', 'sue', 'susie', 'suzy', 'suzanne'],
  ['terence', 'terry'],
  ['theodore', 'ted', 'teddy', 'theo'],
  ['theresa', 'terry', 'tess', 'tessa', 'teresa', 'tracy'],
  ['thomas', 'tom', 'tommy'],
  ['timothy', 'tim', 'timmy'],
  ['valerie', 'val'],
  ['victoria', 'vicky', 'tori', 'vicki', 'toria'],
  ['vincent', 'vince', 'vinnie', 'vin'],
  ['virginia', 'ginny', 'ginger', 'virgie'],
  ['walter', 'walt', 'wally'],
  ['william', 'will', 'bill', 'billy', 'willie', 'liam', 'willy'],
  ['zachary', 'zach', 'zack', 'zak'],
];

const INDEX: ReadonlyMap<string, ReadonlySet<number>> = (() => {
  const m = new Map<string, Set<number>>();
  GROUPS.forEach((g, i) => {
    for (const n of g) {
      const s = m.get(n) ?? new Set<number>();
      s.add(i);
      m.set(n, s);
    }
  });
  return m;
})();

/** True when two different folded given names are forms of one name in the table. */
export function areNicknames(a: string, b: string): boolean {
  if (a === b) return false;
  const ga = INDEX.get(a);
  const gb = INDEX.get(b);
  if (!ga || !gb) return false;
  for (const i of ga) if (gb.has(i)) return true;
  return false;
}

/** The other forms of a name in the table (for the synthetic population's nickname corruption). */
export function nicknamesOf(name: string): string[] {
  const out = new Set<string>();
  for (const i of INDEX.get(name) ?? []) for (const n of GROUPS[i] ?? []) if (n !== name) out.add(n);
  return [...out];
}
