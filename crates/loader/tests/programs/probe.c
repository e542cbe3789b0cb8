/* What a launched program can observe of how it was started; crac's run must print the same
   as a native one. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <pthread.h>
#include <sys/auxv.h>
#include <unistd.h>
#include <sys/prctl.h>
static void *w(void *a){ long s=0; for(long i=0;i<1000000;i++) s+=i*(long)a; return (void*)s; }
int main(int argc, char **argv, char **envp){
  for(int i=0;i<argc;i++) printf("argv[%d]=%s\n", i, argv[i]);
  printf("execfn=%s\n", (char*)getauxval(AT_EXECFN));
  char name[32]={0}; prctl(PR_GET_NAME, name); printf("comm=%s\n", name);
  struct sigaction sa; sigaction(SIGPIPE, 0, &sa); printf("sigpipe=%s\n", sa.sa_handler==SIG_IGN?"ign":sa.sa_handler==SIG_DFL?"dfl":"handler");
  sigaction(SIGSEGV, 0, &sa); printf("sigsegv=%s\n", sa.sa_handler==SIG_DFL?"dfl":"other");
  sigset_t m; sigprocmask(SIG_BLOCK, 0, &m); printf("usr1blocked=%d\n", sigismember(&m, SIGUSR1));
  stack_t ss; sigaltstack(0,&ss); printf("altstack_disabled=%d\n", (ss.ss_flags & SS_DISABLE)!=0);
  pthread_t t[8]; long tot=0; for(long i=0;i<8;i++) pthread_create(&t[i],0,w,(void*)i); for(int i=0;i<8;i++){void*r; pthread_join(t[i],&r); tot+=(long)r;} printf("threads=%ld\n", tot);
  char *p = malloc(1<<20); memset(p, 1, 1<<20); printf("malloc ok\n"); free(p);
  printf("sp aligned=%d\n", ((unsigned long)__builtin_frame_address(0) & 15) == 0);
  FILE *f = fopen("/proc/self/cmdline", "r"); char cl[512]; size_t n = fread(cl, 1, sizeof cl - 1, f); fclose(f);
  for (size_t i = 0; i < n; i++) if (!cl[i]) cl[i] = ' ';
  cl[n] = 0; printf("cmdline=%s\n", cl);
  f = fopen("/proc/self/auxv", "r"); unsigned long av[2]; unsigned long entry = 0;
  while (fread(av, sizeof av, 1, f) == 1 && av[0]) if (av[0] == AT_ENTRY) entry = av[1];
  fclose(f); printf("procauxv_entry_matches=%d\n", entry == getauxval(AT_ENTRY));
  f = fopen("/proc/self/maps", "r"); char line[512]; int labeled = 0; unsigned long here = (unsigned long)&line;
  while (fgets(line, sizeof line, f)) { unsigned long a, b; if (sscanf(line, "%lx-%lx", &a, &b) == 2 && a <= here && here < b && strstr(line, "[stack]")) labeled = 1; }
  fclose(f); printf("stack_labeled=%d\n", labeled);
  return argc + 40;
}
